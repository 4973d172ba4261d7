"""The admin pages for a team's escalation policy and webhook (part of the ``directory_ui``
blueprint). Escalation policies go through ``admin_service`` and ``delivery.escalation``;
webhooks through ``notifications.webhooks``; both audit every change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import abort, redirect, request, url_for
from flask.typing import ResponseReturnValue

from handover.db import get_session
from handover.delivery import escalation
from handover.directory import admin_service as admin
from handover.directory import forms
from handover.directory import service as directory
from handover.directory.models import Team
from handover.directory.views import admin_id, attempt, bp, page, team_or_404
from handover.notifications import webhooks
from handover.timeutil import now

TIMING_LABELS = {
    "working_minutes": "Working minutes after the level before",
    "minutes": "Minutes after the level before, nights and weekends included",
    "end_of_day": "At the end of that working day",
    "next_day_at": "At a time on the next working day",
}
NOTIFY_LABELS = {"team_manager": "the team managers", "service_manager": "the service manager"}


def describe(step: Mapping[str, Any]) -> str:
    """One step of a ladder in words: when it falls due and whom it tells."""
    if "working_minutes" in step:
        when = f"{step['working_minutes']} working minutes later"
    elif "minutes" in step:
        when = f"{step['minutes']} minutes later"
    elif step.get("end_of_day"):
        when = "at the end of the working day"
    else:
        when = f"at {step.get('next_day_at')} on the next working day"
    whom = ", ".join(NOTIFY_LABELS.get(item, item) for item in step.get("notify", []))
    return f"{when}: tell {whom}"


def _ladders(team: Team) -> dict[str, Sequence[Mapping[str, Any]]]:
    """The ladder each urgency uses at ``team`` now: its own, or the default."""
    session = get_session()
    return {
        urgency: escalation.ladder_for(session, team=team, urgency=urgency)
        for urgency in forms.URGENCIES
    }


def _day_team(code: str) -> Team:
    team = team_or_404(code)
    return team if team.kind == "social_work" else abort(404)


@bp.get("/escalation")
def escalation_policies() -> ResponseReturnValue:
    """Each day team's escalation: its own policy or the defaults, and its service manager."""
    session = get_session()
    teams = [team for team in directory.list_teams(session) if team.kind == "social_work"]
    return page(
        "directory/escalation_list.html",
        teams=teams,
        policies=admin.list_escalation_policies(session),
        ladders={team.code: _ladders(team) for team in teams},
        describe=describe,
    )


def _escalation_page(team: Team, status: int = 200, **context: Any) -> tuple[str, int]:
    return page(
        "directory/escalation.html",
        status,
        team=team,
        defaults=escalation.DEFAULT_LADDERS,
        describe=describe,
        timings=TIMING_LABELS,
        urgencies=forms.URGENCIES,
        levels=range(1, forms.LEVELS + 1),
        **context,
    )


@bp.get("/teams/<code>/escalation")
def escalation_edit(code: str) -> ResponseReturnValue:
    """The form for a day team's own escalation ladders and service manager."""
    team = _day_team(code)
    policy = escalation.policy_for(get_session(), code)
    ladders = json.loads(policy.ladders) if policy is not None else {}
    manager = policy.service_manager_email if policy is not None else None
    return _escalation_page(team, form=forms.escalation_form(ladders, manager), own=policy)


@bp.post("/teams/<code>/escalation")
def escalation_update(code: str) -> ResponseReturnValue:
    """Save a day team's escalation policy; blank urgencies use the default ladder."""
    team = _day_team(code)
    spec, rows = forms.escalation(request.form)
    _, errors = attempt(
        lambda session: admin.set_escalation_policy(
            session, team=team, spec=spec, actor_id=admin_id(), now=now()
        ),
        rows,
    )
    if errors:
        form = forms.typed(request.form)
        return _escalation_page(_day_team(code), 422, errors=errors, form=form, own=None)
    return redirect(url_for(".team", code=code, done="saved") + "#escalation")


@bp.post("/teams/<code>/escalation/remove")
def escalation_remove(code: str) -> ResponseReturnValue:
    """Return a day team to the default escalation ladders."""
    team = _day_team(code)
    attempt(
        lambda session: admin.remove_escalation_policy(
            session, team=team, actor_id=admin_id(), now=now()
        )
    )
    return redirect(url_for(".team", code=code, done="removed") + "#escalation")


@bp.get("/webhooks")
def webhook_list() -> ResponseReturnValue:
    """The teams whose notifications are also posted to their own systems."""
    session = get_session()
    teams = {team.code: team for team in directory.list_teams(session)}
    return page("directory/webhooks.html", hooks=admin.list_webhooks(session), teams=teams)


def _webhook_page(team: Team, status: int = 200, **context: Any) -> tuple[str, int]:
    hook = admin.list_webhooks(get_session()).get(team.code)
    context.setdefault("form", {"webhook_url": hook.url if hook is not None else ""})
    return page("directory/webhook.html", status, team=team, hook=hook, **context)


@bp.get("/teams/<code>/webhook")
def webhook_edit(code: str) -> ResponseReturnValue:
    """Where a team's notifications are posted, and the form to change it."""
    return _webhook_page(team_or_404(code))


@bp.post("/teams/<code>/webhook")
def webhook_update(code: str) -> ResponseReturnValue:
    """Set the team's webhook with a new signing secret, shown on this page once only."""
    team, secret = team_or_404(code), webhooks.new_secret()
    _, errors = attempt(
        lambda session: webhooks.set_team_webhook(
            session,
            team_code=team.code,
            url=forms.webhook_url(request.form),
            secret=secret,
            actor_id=admin_id(),
            now=now(),
        )
    )
    if errors:
        return _webhook_page(team_or_404(code), 422, errors=errors, form=forms.typed(request.form))
    # Not a redirect: the secret is shown in this answer and stored nowhere in plain text.
    return _webhook_page(team_or_404(code), secret=secret)


@bp.post("/teams/<code>/webhook/remove")
def webhook_remove(code: str) -> ResponseReturnValue:
    """Stop posting the team's notifications to its webhook."""
    team = team_or_404(code)
    attempt(
        lambda session: webhooks.remove_team_webhook(
            session, team_code=team.code, actor_id=admin_id(), now=now()
        )
    )
    return redirect(url_for(".team", code=code, done="removed") + "#webhook")
