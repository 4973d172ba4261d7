"""EDT pages: home, the handover as a task list of section pages, check answers, submit, addenda.

Each section page reads the draft, shows its questions (handover.records.editor_pages), and on
save turns the form into the section's JSON (handover.records.forms), checks it with the same
``standard.validate_draft`` as the API, and stores it through ``service.update`` (merge by
section): nothing is stored when anything is wrong, and the page keeps what the user typed.
Every read of record content is audited like the API's, and committed before the page renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, NoReturn, TypeVar, cast

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from handover import audit
from handover.auth import policy
from handover.auth.views import signed_in
from handover.db import get_session
from handover.directory import service as directory
from handover.errors import NotFound, ValidationFailed
from handover.records import editor_display as display
from handover.records import editor_form as form
from handover.records import editor_pages as pages
from handover.records import editor_tasks as tasks
from handover.records import forms, schemas, service, standard
from handover.records.models import Handover
from handover.timeutil import now, to_london

bp = Blueprint("editor", __name__)
View = TypeVar("View", bound=Callable[..., Any])
Errors = Mapping[str, list[str]]
PAGE_SIZE = 50


def edt_only(view: View) -> View:
    """Signed in, and in an EDT role: others get the 403 page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not policy.can_create(g.user):
            _deny()
        return view(*args, **kwargs)

    return cast(View, signed_in(wrapper))


def _deny() -> NoReturn:
    """Audit the refused access, then the 403 page."""
    session = get_session()
    session.rollback()
    audit.record(
        session,
        now=now(),
        action="access.denied",
        actor_id=g.user.id,
        details={"path": request.path, "method": request.method},
    )
    session.commit()
    abort(403)


def _writable(handover_id: str) -> Handover:
    """The handover if this user's EDT team wrote it; 404 if they may not know of it."""
    try:
        handover = service.get_visible(get_session(), user=g.user, handover_id=handover_id)
    except NotFound:
        abort(404)
    if not policy.can_write(g.user, handover):
        _deny()
    return handover


def _draft(handover_id: str) -> Handover:
    """The writable draft; once submitted, its edit pages send the user to the addendum page."""
    handover = _writable(handover_id)
    if handover.status in service.ADDENDUM_CLOSED - {"draft"}:
        view = display.maybe_url("records_ui.view", handover_id=handover.id)
        abort(redirect(view or url_for("editor.home")))
    if handover.status != "draft":
        abort(redirect(url_for("editor.addendum", handover_id=handover.id)))
    return handover


# The routes.


@bp.get("/edt")
@edt_only
def home() -> ResponseReturnValue:
    """The team's drafts and submitted handovers, newest first, with where each stands."""
    session, moment = get_session(), now()
    asked = request.args.get("page", "1")
    number = (
        min(max(int(asked), 1), 10_000)
        if asked.isdecimal() and asked.isascii() and len(asked) < 6
        else 1
    )
    filters = service.ListFilters(limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    found = service.list_visible(session, user=g.user, filters=filters, now=moment)
    shown = found[:PAGE_SIZE]
    audit.record(
        session,
        now=moment,
        action="handover.list",
        actor_id=g.user.id,
        details={"count": len(shown), "purpose": None, **policy.describe(g.user)},
    )
    rows = display.home_rows(session, g.user, shown, moment)
    session.commit()
    return render_template(
        "editor/home.html",
        rows=rows,
        previous=url_for("editor.home", page=number - 1) if number > 1 else None,
        following=url_for("editor.home", page=number + 1) if len(found) > PAGE_SIZE else None,
    )


@bp.route("/handovers/new", methods=["GET", "POST"])
@edt_only
def new() -> ResponseReturnValue:
    """Start a handover: where it goes and how urgent it is; the draft is created on save."""
    fields = pages.fields_for(pages.BASICS, form.choices({}))
    page = form.FormPage(None, {}, pages.BASICS, "", None, fields, {})
    if request.method == "GET":
        return form.render(page, "editor/form.html")
    data, unreadable = forms.parse(fields, request.form, {})
    errors = {path: [text] for path, text in unreadable.items()}
    for path, messages in standard.validate_draft(data).items():
        errors.setdefault(path, messages)
    session = get_session()
    if not errors:
        try:
            handover = service.create(session, user=g.user, payload=data, now=now())
            session.commit()
            return redirect(url_for("editor.task_list", handover_id=handover.id))
        except ValidationFailed as failure:
            session.rollback()
            errors = dict(failure.fields)
    return form.render(page, "editor/form.html", 422, errors=errors)


@bp.get("/handovers/<handover_id>/edit")
@edt_only
def task_list(handover_id: str) -> ResponseReturnValue:
    """The handover as a list of tasks, each with where it stands, and its completeness."""
    handover = _draft(handover_id)
    record = form.read(handover, "editor.task_list")
    get_session().commit()
    statuses = tasks.task_statuses(record, standard.validate_submit(record, today=form.today()))
    return render_template(
        "editor/task_list.html",
        handover=handover,
        groups=display.task_groups(handover, record, statuses),
        completed=sum(status == tasks.COMPLETED for status in statuses.values()),
        total=len(statuses),
    )


@bp.route("/handovers/<handover_id>/edit/<section>", methods=["GET", "POST"])
@edt_only
def section(handover_id: str, section: str) -> ResponseReturnValue:
    """A section's page; for a list section (children, household ...), the list of its items."""
    handover = _draft(handover_id)
    if section not in pages.LIST_SECTIONS:
        return form.edit_page(handover, section, "")
    if request.method == "POST":
        abort(405)
    record = form.read(handover, "editor.list")
    get_session().commit()

    def link(item: str, remove: bool) -> str:
        endpoint = "editor.remove" if remove else "editor.item"
        return url_for(endpoint, handover_id=handover.id, section=section, item=item)

    following = tasks.next_section(section)
    return render_template(
        "editor/list.html",
        handover=handover,
        section=section,
        title=pages.TITLES[section],
        item_name=pages.ITEM_NAMES[section],
        rows=display.list_rows(section, record, link),
        add_url=link("new", False),
        next_url=url_for("editor.section", handover_id=handover.id, section=following)
        if following
        else url_for("editor.check", handover_id=handover.id),
    )


@bp.route("/handovers/<handover_id>/edit/<section>/<item>", methods=["GET", "POST"])
@edt_only
def item(handover_id: str, section: str, item: str) -> ResponseReturnValue:
    """One item of a list section: a child, a person, an action ... (``new`` adds one)."""
    return form.edit_page(_draft(handover_id), section, item)


@bp.route("/handovers/<handover_id>/edit/<section>/<item>/remove", methods=["GET", "POST"])
@edt_only
def remove(handover_id: str, section: str, item: str) -> ResponseReturnValue:
    """Ask, then remove one item (a child's relationships and safety plan go with them)."""
    handover = _draft(handover_id)
    page = form.load(handover, section, item, "editor.remove")
    if page.index is None:
        abort(404)
    list_url = url_for("editor.section", handover_id=handover.id, section=section)
    if request.method == "GET":
        get_session().commit()
        return render_template("editor/remove.html", page=page, list_url=list_url)
    patch = tasks.patch_without(section, page.record, page.index)
    session = get_session()
    service.update(session, user=g.user, handover=handover, payload=patch, now=now())
    session.commit()
    return redirect(list_url)


def _check_page(handover: Handover, failures: Errors | None, status: int) -> ResponseReturnValue:
    record = form.read(handover, "editor.check")
    get_session().commit()
    if failures is None:
        failures = standard.validate_submit(record, today=form.today())
    choices = form.choices(record)
    return render_template(
        "editor/check.html",
        handover=handover,
        problems=[
            display.problem(handover, record, choices, path, messages[0])
            for path, messages in failures.items()
        ],
        cards=display.cards(handover, record, choices),
    ), status


@bp.get("/handovers/<handover_id>/check")
@edt_only
def check(handover_id: str) -> ResponseReturnValue:
    """Every answer, a change link for each section, and what stops it being submitted."""
    return _check_page(_draft(handover_id), None, 200)


@bp.post("/handovers/<handover_id>/submit")
@edt_only
def submit(handover_id: str) -> ResponseReturnValue:
    """Submit to the standard: scheduled for the team's next working start, or back to check."""
    handover = _draft(handover_id)
    session = get_session()
    try:
        service.submit(session, user=g.user, handover=handover, now=now())
    except ValidationFailed as failure:
        session.rollback()
        return _check_page(handover, failure.fields, 422)
    session.commit()
    return redirect(url_for("editor.submitted", handover_id=handover.id))


@bp.get("/handovers/<handover_id>/submitted")
@edt_only
def submitted(handover_id: str) -> ResponseReturnValue:
    """The confirmation: the reference, and when it is due to reach which team."""
    handover = _writable(handover_id)
    if handover.submitted_at is None:
        return redirect(url_for("editor.task_list", handover_id=handover.id))
    team = directory.get_team(get_session(), handover.team_code or "")
    due = to_london(handover.due_at) if handover.due_at else None
    return render_template(
        "editor/submitted.html",
        handover=handover,
        team=team.name if team else handover.team_code,
        due_day=f"{due:%A} {due.day} {due:%B %Y}" if due else "",
        record_url=display.maybe_url("records_ui.view", handover_id=handover.id),
    )


# Addenda: later information after submit.


@bp.route("/handovers/<handover_id>/addenda/new", methods=["GET", "POST"])
@edt_only
def addendum(handover_id: str) -> ResponseReturnValue:
    """Choose a section (and an item), change it and say why: a new version of the record."""
    handover = _writable(handover_id)
    if handover.status == "draft":
        return redirect(url_for("editor.task_list", handover_id=handover.id))
    if handover.status in service.ADDENDUM_CLOSED:
        return render_template("blocked.html", handover=handover, verb="added to"), 409
    section, item = request.args.get("section", ""), request.args.get("item", "")
    if section and (section == pages.BASICS or section not in pages.PAGES):
        abort(404)
    if not section:
        return _choose_section(handover)
    if section in pages.LIST_SECTIONS and not item:
        return _addendum_list(handover, section)
    page = form.load(handover, section, item, "editor.addendum")
    if request.method == "GET" or request.form.get("add"):
        get_session().commit()
        return form.render(page, "editor/addendum.html", note=request.form.get(form.NOTE, ""))
    return _add_addendum(page)


def _choose_section(handover: Handover) -> ResponseReturnValue:
    """Which section has new information (asked again, with an error, if none was chosen)."""
    choices = [{"value": s, "text": pages.TITLES[s]} for s in pages.ORDER[1:]]
    errors = {"section": "Select which part of the handover has new information"}
    chosen_none = "section" in request.args
    return render_template(
        "editor/addendum_choose.html",
        handover=handover,
        choices=choices,
        errors=errors if chosen_none else {},
    ), (422 if chosen_none else 200)


def _addendum_list(handover: Handover, section: str) -> ResponseReturnValue:
    record = form.read(handover, "editor.addendum")
    get_session().commit()

    def link(item: str, remove: bool) -> str:
        return url_for("editor.addendum", handover_id=handover.id, section=section, item=item)

    return render_template(
        "editor/list.html",
        handover=handover,
        section=section,
        title=pages.TITLES[section],
        item_name=pages.ITEM_NAMES[section],
        rows=[
            {**row, "actions": {"items": row["actions"]["items"][:1]}}
            for row in display.list_rows(section, record, link)
        ],
        add_url=link("new", False),
        addendum=True,
    )


def _add_addendum(page: form.FormPage) -> ResponseReturnValue:
    assert page.handover is not None
    patch, errors = form.posted(page)
    note = request.form.get(form.NOTE, "").strip()
    if not note:
        errors[form.NOTE] = ["Enter what has changed and why"]
    elif len(note) > schemas.NARRATIVE:
        errors[form.NOTE] = [f"What has changed must be {schemas.NARRATIVE} characters or fewer"]
    session = get_session()
    if not errors:
        try:
            version = service.add_addendum(
                session, user=g.user, handover=page.handover, note=note, changes=patch, now=now()
            )
            session.commit()
            return redirect(
                url_for(
                    "editor.addendum_added", handover_id=page.handover.id, version=version.version
                )
            )
        except ValidationFailed as failure:
            session.rollback()
            form.audit_view(page.handover, "editor.addendum")
            errors = {path.removeprefix("changes."): m for path, m in failure.fields.items()}
    session.commit()
    return form.render(page, "editor/addendum.html", 422, errors=errors, note=note)


@bp.get("/handovers/<handover_id>/addenda/<int:version>")
@edt_only
def addendum_added(handover_id: str, version: int) -> ResponseReturnValue:
    """The addendum is part of the record: what next."""
    handover = _writable(handover_id)
    if not 1 < version <= handover.current_version:
        abort(404)
    return render_template(
        "editor/addendum_added.html",
        handover=handover,
        version=version,
        record_url=display.maybe_url("records_ui.view", handover_id=handover.id),
    )
