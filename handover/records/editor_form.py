"""The EDT editor's form pages: load a page, read the posted form, save it, render it again.

A page edits one dict of a draft (a section, or one item of a list section) or, for an addendum,
of a submitted record. ``edit_page`` is the whole GET/POST cycle of a draft's page: shown as
stored; saved through ``service.update`` when the form reads and ``standard.validate_draft``
passes; otherwise shown again as typed, with an error summary linking to each input. Every read
of record content is audited like the API's, in the request's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from handover import audit
from handover.auth import policy
from handover.db import get_session
from handover.directory import service as directory
from handover.errors import ValidationFailed
from handover.records import editor_pages as pages
from handover.records import editor_tasks as tasks
from handover.records import form_widgets, forms, service, standard
from handover.records.form_widgets import widgets
from handover.records.models import Handover
from handover.timeutil import now, to_london

Errors = Mapping[str, list[str]]
NOTE = "note"  # the addendum's "what has changed" field


def audit_view(handover: Handover, page: str) -> None:
    """Record that this user read the record's content, on this page."""
    audit.record(
        get_session(),
        now=now(),
        action="handover.view",
        actor_id=g.user.id,
        object_type="handover",
        object_id=handover.id,
        details={"audience": "edt", "purpose": None, "page": page, **policy.describe(g.user)},
    )


def read(handover: Handover, page: str) -> dict[str, Any]:
    """The record as the EDT reads it, the read audited in the request's transaction."""
    record = service.read_record(get_session(), handover, "edt")
    audit_view(handover, page)
    return record


def today() -> date:
    return to_london(now()).date()


def choices(record: Mapping[str, Any]) -> pages.PageChoices:
    """The LAs the team covers with their day teams, police teams, and the record's children."""
    session = get_session()
    teams = [team for team in directory.list_teams(session) if team.active]
    codes = set(directory.covered_authorities(g.user.team))
    covered = [la for la in directory.list_authorities(session) if la.code in codes]
    covered.sort(key=lambda la: la.name)
    return pages.PageChoices(
        authorities=tuple((la.code, la.name) for la in covered),
        teams={
            la.code: tuple(
                (t.code, t.name)
                for t in teams
                if t.kind == "social_work" and t.local_authority_code == la.code
            )
            for la in covered
        },
        police_teams=tuple((t.code, t.name) for t in teams if t.kind == "police"),
        children=tasks.child_choices(record),
    )


# Form pages: a section, one item of a list section, or the same for an addendum.


@dataclass
class FormPage:
    """One form page: the record, what it edits, its questions and where its errors live."""

    handover: Handover | None  # None while starting a new handover
    record: dict[str, Any]
    section: str
    item: str
    index: int | None
    fields: tuple[forms.Field, ...]
    data: dict[str, Any]
    prefix: str = ""  # the record path of the page's dict: errors under it are on the page

    @property
    def title(self) -> str:
        """The page's heading."""
        if self.section not in pages.LIST_SECTIONS:
            return pages.TITLES[self.section]
        if self.section == "safety_plans":
            return f"Safety plan for {dict(tasks.child_choices(self.record))[self.item]}"
        if self.index is None:
            return f"Add a {pages.ITEM_NAMES[self.section]}"
        return tasks.item_title(self.section, self.data, self.index)


def load(handover: Handover, section: str, item: str, page: str) -> FormPage:
    """The page of ``section`` (and ``item`` of a list section); 404 for one that is not."""
    if section not in pages.PAGES or (section in pages.LIST_SECTIONS) != bool(item):
        abort(404)
    record = read(handover, page)
    try:
        index = tasks.item_index(record, section, item) if item else None
    except LookupError:
        abort(404)
    fields = pages.fields_for(section, choices(record))
    data = tasks.page_data(section, record, index, item)
    _, prefix = tasks.patch_for(section, record, index, dict(data))
    return FormPage(handover, record, section, item, index, fields, data, prefix)


def posted(page: FormPage) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The PATCH the form asks for, and every error by record path (form and draft checks).

    Sets ``page.prefix`` to where the item landed (timelines and safety plans are kept in order).
    """
    data, unreadable = forms.parse(page.fields, request.form, page.data)
    patch, page.prefix = tasks.patch_for(page.section, page.record, page.index, data)
    errors = {page.prefix + path: [text] for path, text in unreadable.items()}
    for path, messages in standard.validate_draft(patch).items():
        errors.setdefault(path, messages)
    return patch, errors


def placed(page: FormPage, errors: Errors) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Record errors as (message by widget id, error summary items linking to each input).

    The summary follows the page's order; errors about nothing on the page come last, unlinked.
    """
    inline: dict[str, str] = {}
    ordered: list[tuple[tuple[int, ...], dict[str, str]]] = []
    last: tuple[int, ...] = (len(forms.leaves(page.fields)) + 1,)
    for path, messages in errors.items():
        within = path.removeprefix(page.prefix) if path.startswith(page.prefix) else None
        if path == NOTE:  # the addendum's note, below the questions
            found: tuple[str, str] | None = (NOTE, NOTE)
            text, where = messages[0], last
        elif within is None:  # an error outside this page's part of the record
            found, text, where = None, messages[0], last
        else:
            found = form_widgets.locate(page.fields, within)
            text = form_widgets.message(form_widgets.field_at(page.fields, within), messages[0])
            where = form_widgets.position(page.fields, within) if found else last
        if found is None:
            ordered.append(((*last, 1), {"text": text}))
            continue
        inline.setdefault(found[0], text)
        ordered.append((where, {"text": text, "href": f"#{found[1]}"}))
    ordered.sort(key=lambda pair: pair[0])
    return inline, [item for _, item in ordered]


def render(page: FormPage, template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render a form page: as posted after a POST, as stored after a GET."""
    errors: Errors = context.pop("errors", {})
    if request.method == "POST":
        values = forms.values_from_form(page.fields, request.form, request.form.get("add", ""))
    else:
        values = forms.values_from_data(page.fields, page.data)
    inline, problems = placed(page, errors)
    if context.pop("on_page_only", False):
        problems = [problem for problem in problems if "href" in problem]
    page_widgets = widgets(page.fields, values, inline)
    return render_template(
        template,
        page=page,
        widgets=page_widgets,
        problems=problems,
        note_error=inline.get(NOTE),
        single=page.section in pages.SCALAR_SECTIONS,
        section_title=pages.TITLES[page.section],
        **context,
    ), status


def save(page: FormPage, patch: dict[str, Any]) -> dict[str, list[str]]:
    """Store the page's PATCH and commit; the service's refusal (nothing stored) otherwise."""
    session = get_session()
    assert page.handover is not None
    try:
        service.update(session, user=g.user, handover=page.handover, payload=patch, now=now())
    except ValidationFailed as failure:
        session.rollback()
        audit_view(page.handover, "editor.section")
        return dict(failure.fields)
    session.commit()
    return {}


def edit_page(handover: Handover, section: str, item: str) -> ResponseReturnValue:
    """GET shows the page; POST saves it (or adds a blank row) and moves on."""
    page = load(handover, section, item, "editor.section")
    returning = request.values.get("return") == "check"
    if request.method == "GET":
        get_session().commit()
        shown = check_errors(page) if returning else {}
        return render(
            page, "editor/form.html", errors=shown, returning=returning, on_page_only=True
        )
    if request.form.get("add"):
        get_session().commit()
        return render(page, "editor/form.html", returning=returning)
    patch, errors = posted(page)
    if not errors:
        errors = save(page, patch)
        if not errors:
            return redirect(after_save(page, returning))
    get_session().commit()
    return render(page, "editor/form.html", 422, errors=errors, returning=returning)


def check_errors(page: FormPage) -> dict[str, list[str]]:
    """The submit standard's failures on this page (shown when coming from check answers)."""
    failures = standard.validate_submit(page.record, today=today())
    return {path: m for path, m in failures.items() if path.startswith(page.prefix)}


def after_save(page: FormPage, returning: bool) -> str:
    """Check answers when the user came from it; else the list, the next task or the task list."""
    assert page.handover is not None
    handover_id, following = page.handover.id, tasks.next_section(page.section)
    if returning:
        return url_for("editor.check", handover_id=handover_id)
    if page.section in pages.LIST_SECTIONS:
        return url_for("editor.section", handover_id=handover_id, section=page.section)
    if request.form.get("next") == "tasks":
        return url_for("editor.task_list", handover_id=handover_id)
    if following is None:
        return url_for("editor.check", handover_id=handover_id)
    return url_for("editor.section", handover_id=handover_id, section=following)
