"""The lifecycle through the API: every transition, who may make it, and every one refused (409)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.db import transaction
from handover.delivery import service
from handover.directory import service as directory
from handover.records.models import Handover, HandoverEvent
from tests.conftest import DEMO_USERS, Api
from tests.delivery.conftest import (
    MONDAY_10,
    READ_BACK,
    create,
    delivered,
    event_kinds,
    handover_row,
    jobs,
    ladder,
    outbox,
    read_back,
    record_for,
    submit_at,
    tick,
)

RETURN = {
    "reason": "The family moved to the MASH area last month.",
    "suggested_team": "northvale-mash",
}
REROUTE = {"team": "northvale-mash"}
WITHDRAW = {"reason": "Filed twice: the other handover stands."}
CLOSE = {"in_hours_reference": "MOS-2026-448812"}

ACTIONS: dict[str, tuple[str, Any]] = {
    "acknowledge": ("social_worker", read_back()),
    "return": ("social_worker", RETURN),
    "reroute": ("edt_manager", REROUTE),
    "withdraw": ("edt_manager", WITHDRAW),
    "close": ("social_worker", CLOSE),
}
ALLOWED = {
    "acknowledge": {"delivered"},
    "return": {"delivered", "acknowledged"},
    "reroute": {"returned"},
    "withdraw": {"draft", "scheduled", "delivered"},
    "close": {"acknowledged"},
}
STATES = ("draft", "scheduled", "delivered", "acknowledged", "returned", "closed", "withdrawn")


def act(
    api: Api, action: str, handover_id: str, *, as_: str | None = None, body: Any = None
) -> Any:
    """POST one transition as its usual actor (or ``as_``) with a valid body (or ``body``)."""
    actor, valid = ACTIONS[action]
    return api.post(
        f"/handovers/{handover_id}/{action}",
        as_=as_ or actor,
        json_body=valid if body is None else body,
    )


def in_state(app: Flask, api: Api, status: str) -> str:
    """A handover brought to ``status`` through the real transitions."""
    if status == "draft":
        return create(api, record_for())
    if status in ("scheduled", "withdrawn"):
        handover_id = create(api, record_for())
        submit_at(app, handover_id, MONDAY_10)
        if status == "withdrawn":
            assert act(api, "withdraw", handover_id).status_code == 200
        return handover_id
    handover_id = delivered(app, api)
    steps = {
        "delivered": [],
        "acknowledged": ["acknowledge"],
        "returned": ["return"],
        "closed": ["acknowledge", "close"],
    }[status]
    for step in steps:
        response = act(api, step, handover_id)
        assert response.status_code == 200, response.get_json()
    return handover_id


REFUSED = [
    (status, action)
    for action in ACTIONS
    for status in STATES
    if status not in ALLOWED[action] and not (status == "draft" and action != "reroute")
]


@pytest.mark.parametrize(("status", "action"), REFUSED)
def test_a_transition_the_status_does_not_allow_is_409(
    app: Flask, api: Api, status: str, action: str
) -> None:
    handover_id = in_state(app, api, status)
    history = event_kinds(app, handover_id)
    response = act(api, action, handover_id)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_transition"
    assert handover_row(app, handover_id).status == status
    assert event_kinds(app, handover_id) == history


@pytest.mark.parametrize("action", ["acknowledge", "return", "close"])
def test_a_draft_does_not_exist_for_the_day_team(app: Flask, api: Api, action: str) -> None:
    handover_id = in_state(app, api, "draft")
    assert act(api, action, handover_id).status_code == 404


def test_acknowledgement_with_read_back(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    opened = api.get(f"/handovers/{handover_id}", as_="social_worker").get_json()
    assert (opened["status"], opened["acknowledged_at"]) == ("delivered", None)  # reading ≠ ack
    response = act(api, "acknowledge", handover_id, body=read_back("a2"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"]["name"] == "Sam Patel"
    assert body["open_queries"] == 1
    shown = api.get(f"/handovers/{handover_id}", as_="edt_worker").get_json()
    assert shown["acknowledged_by"] == body["acknowledged_by"]
    assert shown["acknowledged_at"] is not None
    last = shown["events"][-1]
    assert (last["kind"], last["from"], last["to"]) == ("acknowledged", "delivered", "acknowledged")
    stored = json.loads(last["detail"])
    assert stored["synthesis"] == READ_BACK
    assert stored["actions"][1] == {
        "ref": "a2",
        "response": "queried",
        "question": "Who owns a2 now?",
    }
    assert jobs(app, handover_id) == {
        "transfer:<id>": "done",
        "escalate:<id>:1": "cancelled",
        "escalate:<id>:2": "cancelled",
    }
    thread = api.get(f"/handovers/{handover_id}/messages", as_="edt_worker").get_json()
    assert [(m["kind"], m["action"], m["body"], m["open"]) for m in thread["messages"]] == [
        ("query", "a2", "Who owns a2 now?", True)
    ]
    kinds = {(kind, target) for kind, _, target in outbox(app, handover_id)}
    assert {
        ("acknowledged", "edt@tri-borough.example"),
        ("query", "edt@tri-borough.example"),
    } <= kinds


def _without(ref: str) -> Any:
    body = read_back()
    body["actions"] = [a for a in body["actions"] if a["ref"] != ref]
    return body


def _with_action(index: int, **changes: Any) -> Any:
    body = read_back()
    body["actions"][index] = {**body["actions"][index], **changes}
    return body


BAD_READ_BACKS: list[tuple[Any, str]] = [
    ({**read_back(), "synthesis": "ok"}, "synthesis"),
    ({"actions": read_back()["actions"]}, "synthesis"),
    ({**read_back(), "synthesis": "Received, will read it later today."[:19]}, "synthesis"),
    (_without("a6"), "actions"),
    ({**read_back(), "actions": []}, "actions"),
    (
        {
            **read_back(),
            "actions": [*read_back()["actions"], {"ref": "a9", "response": "accepted"}],
        },
        "actions.6.ref",
    ),
    (
        {
            **read_back(),
            "actions": [*read_back()["actions"], {"ref": "a1", "response": "accepted"}],
        },
        "actions.6.ref",
    ),
    (_with_action(0, response="queried"), "actions.0.question"),
    (_with_action(0, response="queried", question="  "), "actions.0.question"),
    (_with_action(0, question="Why?"), "actions.0.question"),
    (_with_action(0, response="maybe"), "actions.0.response"),
    (_with_action(0, owner="me"), "actions.0.owner"),
    ({**read_back(), "note": "x"}, "note"),
]


@pytest.mark.parametrize(("body", "field"), BAD_READ_BACKS)
def test_an_incomplete_read_back_is_refused_naming_the_field(
    app: Flask, api: Api, body: Any, field: str
) -> None:
    handover_id = delivered(app, api)
    response = act(api, "acknowledge", handover_id, body=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"], response.get_json()
    row = handover_row(app, handover_id)
    assert (row.status, row.open_queries) == ("delivered", 0)
    assert jobs(app, handover_id)["escalate:<id>:1"] == "pending"


def test_an_owner_may_be_named_on_an_accepted_action(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    body = _with_action(0, owner_name="Priya Shah, senior practitioner")
    assert act(api, "acknowledge", handover_id, body=body).status_code == 200
    events = api.get(f"/handovers/{handover_id}/events", as_="social_worker").get_json()["events"]
    assert json.loads(events[-1]["detail"])["actions"][0]["owner_name"].startswith("Priya")


@pytest.mark.parametrize(
    ("action", "who", "status"),
    [
        ("acknowledge", "mash_worker", 403),  # same LA, another team: may read, not act
        ("acknowledge", "edt_worker", 403),
        ("acknowledge", "police_officer", 403),
        ("acknowledge", "southmoor_worker", 404),  # another LA: it does not exist for them
        ("acknowledge", "admin", 404),
        ("return", "mash_worker", 403),
        ("close", "edt_manager", 403),
        ("withdraw", "edt_worker", 403),
        ("withdraw", "team_manager", 403),
        ("reroute", "social_worker", 403),
        ("reroute", "edt_worker", 403),
    ],
)
def test_who_may_make_each_transition(
    app: Flask, api: Api, action: str, who: str, status: int
) -> None:
    handover_id = delivered(app, api)
    response = act(api, action, handover_id, as_=who)
    assert response.status_code == status, response.get_json()
    assert handover_row(app, handover_id).status == "delivered"


def test_return_names_the_reason_and_stops_escalation(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    response = act(api, "return", handover_id)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "returned"
    events = api.get(f"/handovers/{handover_id}/events", as_="edt_manager").get_json()["events"]
    assert events[-1]["kind"] == "returned"
    assert events[-1]["detail"] == f"{RETURN['reason']}\n\nSuggested team: northvale-mash"
    assert set(jobs(app, handover_id).values()) == {"done", "cancelled"}
    assert ("returned", "email", "edt@tri-borough.example") in outbox(app, handover_id)
    assert tick(app, MONDAY_10 + timedelta(days=1)).escalated == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "Wrong team.", "suggested_team": "nowhere-team"}, "suggested_team"),
        ({"reason": "Wrong team.", "suggested_team": "westshire-cait"}, "suggested_team"),
    ],
)
def test_a_return_needs_a_reason_and_a_real_team(
    app: Flask, api: Api, body: Any, field: str
) -> None:
    handover_id = delivered(app, api)
    response = act(api, "return", handover_id, body=body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert handover_row(app, handover_id).status == "delivered"


def _as_user(app: Flask, role: str, call: Callable[..., Handover], **kwargs: Any) -> Handover:
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS[role])
        handover = session.get(Handover, kwargs.pop("handover_id"))
        return call(session, user=user, handover=handover, **kwargs)


def test_reroute_in_hours_delivers_at_once_with_a_fresh_clock_and_its_history(
    app: Flask, api: Api
) -> None:
    handover_id = in_state(app, api, "acknowledged")
    assert act(api, "return", handover_id).status_code == 200
    later = MONDAY_10 + timedelta(hours=2)
    _as_user(
        app,
        "edt_manager",
        service.reroute,
        handover_id=handover_id,
        team_code="northvale-mash",
        now=later,
    )
    row = handover_row(app, handover_id)
    assert (row.status, row.team_code, row.delivered_at) == ("delivered", "northvale-mash", later)
    assert (row.acknowledged_at, row.acknowledged_by_id, row.escalation_level) == (None, None, 0)
    assert row.ack_due_at == later + timedelta(minutes=15)  # northvale-mash's own ladder
    assert ladder(app, handover_id)[0][1] == "2026-11-30T12:15:00Z"
    assert jobs(app, handover_id) == {
        "transfer:<id>": "done",
        "escalate:<id>:1": "cancelled",
        "escalate:<id>:2": "cancelled",
        "escalate:<id>:1:r2": "pending",
        "escalate:<id>:2:r2": "pending",
    }
    assert event_kinds(app, handover_id)[2:] == [
        "delivered", "acknowledged", "returned", "rerouted", "delivered",
        "escalation_unreachable",
    ]  # fmt: skip
    inbox = api.get("/teams/northvale-mash/inbox", as_="mash_worker").get_json()["handovers"]
    assert [h["id"] for h in inbox] == [handover_id]
    old = api.get("/teams/northvale-east-fst/inbox", as_="social_worker").get_json()["handovers"]
    assert old == []
    events = api.get(f"/handovers/{handover_id}/events", as_="mash_worker").get_json()["events"]
    assert events[5]["detail"] == "From northvale-east-fst to northvale-mash."
    assert act(api, "acknowledge", handover_id, as_="social_worker").status_code == 403
    assert act(api, "acknowledge", handover_id, as_="mash_worker").status_code == 200


def test_reroute_out_of_hours_waits_for_the_new_teams_start(app: Flask, api: Api) -> None:
    handover_id = in_state(app, api, "returned")
    saturday = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    _as_user(
        app,
        "edt_manager",
        service.reroute,
        handover_id=handover_id,
        team_code="northvale-mash",
        now=saturday,
    )
    row = handover_row(app, handover_id)
    monday_0830 = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)  # the MASH starts at 08:30
    assert (row.status, row.due_at, row.delivered_at) == ("scheduled", monday_0830, None)
    assert jobs(app, handover_id)["transfer:<id>:r2"] == "pending"
    assert tick(app, monday_0830 - timedelta(seconds=1)).delivered == 0
    assert tick(app, monday_0830).delivered == 1
    assert handover_row(app, handover_id).delivered_at == monday_0830
    assert event_kinds(app, handover_id).count("delivered") == 2


def test_the_team_manager_may_reroute_what_their_team_returned(app: Flask, api: Api) -> None:
    handover_id = in_state(app, api, "returned")
    response = act(api, "reroute", handover_id, as_="team_manager")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["team"] == "northvale-mash"
    assert response.get_json()["status"] in ("scheduled", "delivered")  # by the real clock


@pytest.mark.parametrize(
    ("team", "field"),
    [("eastbury-fst", "team"), ("no-such-team", "team"), ("tri-borough-edt", "team"), ("", "team")],
)
def test_reroute_needs_a_day_team_of_the_same_authority(
    app: Flask, api: Api, team: str, field: str
) -> None:
    handover_id = in_state(app, api, "returned")
    response = act(api, "reroute", handover_id, body={"team": team})
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert handover_row(app, handover_id).status == "returned"


def test_withdrawing_a_scheduled_handover_cancels_its_transfer(app: Flask, api: Api) -> None:
    handover_id = in_state(app, api, "scheduled")
    response = act(api, "withdraw", handover_id)
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    assert jobs(app, handover_id) == {"transfer:<id>": "cancelled"}
    assert tick(app, MONDAY_10).delivered == 0
    assert handover_row(app, handover_id).delivered_at is None
    events = api.get(f"/handovers/{handover_id}/events", as_="edt_worker").get_json()["events"]
    assert (events[-1]["kind"], events[-1]["detail"]) == ("withdrawn", WITHDRAW["reason"])


def test_withdrawing_a_delivered_handover_tells_the_team(app: Flask, api: Api) -> None:
    handover_id = delivered(app, api)
    assert act(api, "withdraw", handover_id).status_code == 200
    assert set(jobs(app, handover_id).values()) == {"done", "cancelled"}
    assert ("withdrawn", "email", "east-fst@northvale.example") in outbox(app, handover_id)
    inbox = api.get("/teams/northvale-east-fst/inbox", as_="social_worker").get_json()
    assert inbox["handovers"] == []


def test_a_draft_may_be_withdrawn(app: Flask, api: Api) -> None:
    handover_id = in_state(app, api, "draft")
    assert act(api, "withdraw", handover_id).status_code == 200
    assert api.post(f"/handovers/{handover_id}/submit", as_="edt_worker").status_code == 409


def test_close_keeps_the_in_hours_reference_encrypted(app: Flask, api: Api) -> None:
    handover_id = in_state(app, api, "acknowledged")
    response = act(api, "close", handover_id)
    assert response.status_code == 200
    assert response.get_json()["status"] == "closed"
    events = api.get(f"/handovers/{handover_id}/events", as_="social_worker").get_json()["events"]
    assert events[-1]["detail"] == "In-hours reference: MOS-2026-448812"
    with app.app_context(), transaction() as session:
        stored = session.scalars(
            sa.select(HandoverEvent.detail).where(HandoverEvent.kind == "closed")
        ).one()
    assert stored is not None and b"MOS-2026-448812" not in stored


@pytest.mark.parametrize(
    "body", [{}, {"in_hours_reference": ""}, {"in_hours_reference": "x" * 101}]
)
def test_close_needs_the_in_hours_reference(app: Flask, api: Api, body: Any) -> None:
    handover_id = in_state(app, api, "acknowledged")
    response = act(api, "close", handover_id, body=body)
    assert response.status_code == 422
    assert "in_hours_reference" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_body_that_is_not_a_json_object_is_refused(app: Flask, api: Api, action: str) -> None:
    handover_id = delivered(app, api)
    actor, _ = ACTIONS[action]
    response = api.post(f"/handovers/{handover_id}/{action}", as_=actor, json_body=["a"])
    assert response.status_code == 400
    assert handover_row(app, handover_id).status == "delivered"
