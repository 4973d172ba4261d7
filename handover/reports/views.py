"""Managers' pages: what needs attention now (/manage) and how quickly teams acknowledge.

Both pages show references, teams, times and counts, never record content; a manager opens a
record through the record view, which audits the read as every read is audited.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, g, render_template, request, url_for

from handover import audit
from handover.auth import policy
from handover.auth.views import deny, signed_in
from handover.db import get_session
from handover.directory.models import User
from handover.reports import chart, service
from handover.timeutil import now

bp = Blueprint("reports", __name__)


def record_url(handover_id: str) -> str | None:
    """The record view of a handover, when the app serves it."""
    if "records_ui.view" not in current_app.view_functions:
        return None
    return url_for("records_ui.view", handover_id=handover_id)


@bp.get("/manage")
@signed_in
def overview() -> str:
    """Overdue and escalated handovers, and returned ones waiting to be rerouted."""
    user: User = g.user
    if not service.can_manage(user):
        deny(user)
    session, moment = get_session(), now()
    found = service.overview(session, user=user, now=moment)
    audit.record(
        session,
        now=moment,
        action="handover.list",
        actor_id=user.id,
        details={
            "page": "manage",
            "count": len(found.overdue) + len(found.returned),
            **policy.describe(user),
        },
    )
    session.commit()
    return render_template(
        "reports/overview.html", overview=found, user=user, now=moment, record_url=record_url
    )


def _audit_report(user: User, team_code: str, moment: datetime) -> None:
    """Reading figures is recorded too: who looked at which team's timeliness."""
    session = get_session()
    audit.record(
        session,
        now=moment,
        action="report.timeliness",
        actor_id=user.id,
        object_type="team",
        object_id=team_code,
        details=policy.describe(user),
    )
    session.commit()


@bp.get("/manage/timeliness")
@signed_in
def timeliness() -> str:
    """One team's last eight weeks: received, time to acknowledge, overdue; chart and table."""
    user: User = g.user
    if user.role not in service.TIMELINESS_ROLES:
        deny(user)
    session, moment = get_session(), now()
    teams = service.timeliness_teams(session, user=user)
    code = request.args.get("team") or (teams[0].code if teams else "")
    team = next((t for t in teams if t.code == code), None)
    if team is None:
        abort(404)
    weeks = service.timeliness(session, user=user, team=team, now=moment)
    _audit_report(user, team.code, moment)
    return render_template(
        "reports/timeliness.html",
        user=user,
        team=team,
        teams=teams,
        weeks=weeks,
        charts=chart.timeliness_charts(weeks, team.name),
        duration=chart.duration,
        can_manage=service.can_manage(user),
    )
