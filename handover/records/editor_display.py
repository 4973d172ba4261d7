"""What the EDT pages show: task list items, list rows, check-answers cards, home rows.

Builders of template context for handover.records.editor; they read a decrypted record (already
audited by the view) or plaintext routing columns, and link to pages by endpoint name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import current_app, url_for
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from handover.auth import policy
from handover.delivery import service as delivery
from handover.directory import service as directory
from handover.directory.models import User
from handover.records import editor_pages as pages
from handover.records import editor_tasks as tasks
from handover.records import form_widgets, service
from handover.records.form_widgets import answers
from handover.records.models import Handover
from handover.ui import london

Link = Callable[[str, bool], str]  # (item, remove?) -> URL


def maybe_url(endpoint: str, **values: Any) -> str | None:
    """A link to another area's page, or None while that page does not exist."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


# The task list.

STATUS_SHOWN: dict[str, dict[str, Any]] = {
    tasks.COMPLETED: {"text": "Completed"},
    tasks.INCOMPLETE: {"tag": {"text": "Incomplete", "classes": "govuk-tag--blue"}},
    tasks.NOT_STARTED: {"tag": {"text": "Not started", "classes": "govuk-tag--light-blue"}},
    tasks.CANNOT_START: {
        "text": "Cannot start yet",
        "classes": "govuk-task-list__status--cannot-start-yet",
    },
}


def task_groups(
    handover: Handover, record: Mapping[str, Any], statuses: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The task list's groups: a heading and govukTaskList items, each with its status."""
    return [
        {
            "heading": heading,
            "items": [_task(handover, section, statuses[section], record) for section in sections],
        }
        for heading, sections in pages.TASK_GROUPS
    ]


def _task(
    handover: Handover, section: str, status: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "title": {"text": pages.TITLES[section]},
        "status": STATUS_SHOWN[status],
    }
    if status == tasks.CANNOT_START:
        item["hint"] = {"text": "Add a child first."}
        return item
    item["href"] = url_for("editor.section", handover_id=handover.id, section=section)
    count = len(tasks.items_of(record, section))
    if section in pages.LIST_SECTIONS and count:
        item["hint"] = {"text": f"{count} added"}
    return item


# List pages: the items of a list section.


def list_rows(section: str, record: Mapping[str, Any], link: Link) -> list[dict[str, Any]]:
    """govukSummaryList rows: each item with its change link and (if it can go) remove link."""
    found = []
    if section == "safety_plans":  # one plan per child: every child is listed
        plans = {plan.get("child") for plan in tasks.items_of(record, section)}
        for ref, name in tasks.child_choices(record):
            status = "Plan recorded" if ref in plans else "No plan yet"
            found.append(
                _row(name, status, link(ref, False), link(ref, True) if ref in plans else "")
            )
        return found
    for i, entry in enumerate(tasks.items_of(record, section)):
        title = tasks.item_title(section, entry, i)
        found.append(_row(title, _detail(section, entry), link(str(i), False), link(str(i), True)))
    return found


def _detail(section: str, entry: Mapping[str, Any]) -> str:
    """A line that tells one item from another on its list page."""
    if section in ("children", "household"):
        if entry.get("date_of_birth"):
            return f"Born {london(entry['date_of_birth'], 'date')}"
        due = entry.get("expected_due_date")
        return f"Due {london(due, 'date')}" if due else ""
    if section == "timeline":
        return london(entry.get("at"))
    if section == "actions":
        owner = entry.get("owner_name") or entry.get("owner_agency") or "No owner yet"
        due = f", by {london(entry['due_by'])}" if entry.get("due_by") else ""
        return f"{owner}{due}"
    return ", ".join(str(entry[key]) for key in ("agency", "role") if entry.get(key))


def _row(title: str, detail: str, change: str, remove: str) -> dict[str, Any]:
    label = "Add" if detail == "No plan yet" else "Change"
    actions = [{"href": change, "text": label, "visuallyHiddenText": title}]
    if remove:
        actions.append({"href": remove, "text": "Remove", "visuallyHiddenText": title})
    return {"key": {"text": title}, "value": {"text": detail}, "actions": {"items": actions}}


# Check answers.


def _check_url(handover: Handover, section: str, item: str = "") -> str:
    """A page opened from check answers, which it returns to on save."""
    back: dict[str, Any] = {"return": "check"}
    if item:
        return url_for("editor.item", handover_id=handover.id, section=section, item=item, **back)
    return url_for("editor.section", handover_id=handover.id, section=section, **back)


def problem(
    handover: Handover,
    record: Mapping[str, Any],
    choices: pages.PageChoices,
    path: str,
    text: str,
) -> dict[str, str]:
    """A submit failure as an error summary item linking to the input on its page."""
    section, item, within, about = tasks.error_target(record, path)
    fields = pages.fields_for(section, choices)
    if section in pages.LIST_SECTIONS and not item:
        href = url_for("editor.section", handover_id=handover.id, section=section)
    else:
        found = form_widgets.locate(fields, within)
        href = _check_url(handover, section, item) + (f"#{found[1]}" if found else "")
    message = form_widgets.message(form_widgets.field_at(fields, within), text)
    for ref, name in choices.children:  # the standard names children by their refs
        message = message.replace(f"Child {ref} ", f"{name} ")
    return {"text": f"{about}: {message}" if about else message, "href": href}


def cards(
    handover: Handover, record: Mapping[str, Any], choices: pages.PageChoices
) -> list[dict[str, Any]]:
    """Check answers: a summary card per section, and per item of a list section."""
    found = []
    for section in pages.ORDER:
        fields = pages.fields_for(section, choices)
        heading = pages.TITLES[section]
        if section not in pages.LIST_SECTIONS:
            data = tasks.page_data(section, record)
            found.append(_card(heading, _check_url(handover, section), answers(fields, data)))
            continue
        entries = tasks.items_of(record, section)
        if not entries:
            href = url_for("editor.section", handover_id=handover.id, section=section)
            found.append(_card(heading, href, [], action="Add"))
        for i, entry in enumerate(entries):
            item = str(entry.get("child")) if section == "safety_plans" else str(i)
            title = tasks.error_target(record, f"{section}.{i}.")[3]
            card = _card(title, _check_url(handover, section, item), answers(fields, entry), 3)
            found.append({**card, "heading": heading if i == 0 else ""})
    return found


def _card(
    title: str, href: str, rows: list[dict[str, Any]], level: int = 2, *, action: str = "Change"
) -> dict[str, Any]:
    """A govukSummaryList card; a section with no answers says so."""
    if not rows:
        rows = [{"key": {"text": "Answers"}, "value": {"text": "Not given"}}]
    actions = {"items": [{"href": href, "text": action}]}
    return {
        "heading": "",
        "params": {
            "card": {"title": {"text": title, "headingLevel": level}, "actions": actions},
            "rows": rows,
        },
    }


# EDT home: where each handover stands.


def home_rows(
    session: Session, user: User, found: Sequence[Handover], moment: datetime
) -> list[dict[str, Any]]:
    """Each handover with its tags, where it stands in words, and what can be done next."""
    teams = {team.code: team.name for team in directory.list_teams(session)}
    authorities = {la.code: la.name for la in directory.list_authorities(session)}
    rows = []
    for handover in found:
        team = teams.get(handover.team_code or handover.allocated_team_code or "", "")
        rows.append(
            {
                "handover": handover,
                "href": _open_url(handover),
                "authority": authorities.get(handover.local_authority_code or "", ""),
                "team": team,
                "tags": _tags(handover, moment),
                "where": _where(session, handover, team),
                "links": _links(user, handover),
            }
        )
    return rows


def _open_url(handover: Handover) -> str:
    if handover.status == "draft":
        return url_for("editor.task_list", handover_id=handover.id)
    view = maybe_url("records_ui.view", handover_id=handover.id)
    return view or url_for("editor.submitted", handover_id=handover.id)


def _tags(handover: Handover, moment: datetime) -> list[dict[str, str]]:
    from handover.ui import tag

    shown = [tag("status", handover.status)]
    if delivery.is_overdue(handover, moment):
        shown.append(tag("status", "overdue"))
    if handover.escalation_level and handover.status == "delivered":
        shown.append(
            {"text": f"Escalated: level {handover.escalation_level}", "classes": "govuk-tag--red"}
        )
    return shown


def _last_event(session: Session, handover: Handover, kind: str) -> Any:
    events = service.history(session, handover, with_details=False)
    return next((e["at"] for e in reversed(events) if e["kind"] == kind), None)


def _where(session: Session, handover: Handover, team: str) -> str:
    """Where the handover stands, in a sentence (times in UK time)."""
    status = handover.status
    if status == "draft":
        return (
            f"Draft, {handover.completeness}% complete. Last changed {london(handover.updated_at)}."
        )
    if status == "scheduled":
        return f"Due to reach {team} at {london(handover.due_at)}."
    if status == "delivered":
        due = (
            f" Acknowledgement due by {london(handover.ack_due_at)}." if handover.ack_due_at else ""
        )
        return f"Delivered to {team} at {london(handover.delivered_at)}.{due}"
    if status == "acknowledged":
        who = session.get(User, handover.acknowledged_by_id or "")
        name = who.name if who else "the team"
        return f"Acknowledged by {name} ({team}) at {london(handover.acknowledged_at)}."
    if status in ("returned", "closed", "withdrawn"):
        verb = {"returned": f"Returned by {team}", "closed": f"Closed by {team}"}
        at = _last_event(session, handover, status)
        when = f" at {london(at)}" if at else ""
        return f"{verb.get(status, 'Withdrawn')}{when}."
    return ""


def _links(user: User, handover: Handover) -> list[dict[str, str]]:
    """What the user can do from the home page: answer queries, reroute a returned handover."""
    found = []
    if handover.open_queries:
        href = maybe_url("delivery_ui.messages", handover_id=handover.id)
        plural = "query" if handover.open_queries == 1 else "queries"
        if href:
            found.append({"href": href, "text": f"{handover.open_queries} {plural} waiting"})
    if handover.status == "returned" and policy.can_reroute(user, handover):
        href = maybe_url("delivery_ui.reroute", handover_id=handover.id)
        if href:
            found.append({"href": href, "text": "Reroute"})
    return found
