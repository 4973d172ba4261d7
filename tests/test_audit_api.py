"""The auditor's API: search the audit log and verify its chain; nobody else may."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.db import transaction
from handover.directory import service as directory
from handover.timeutil import isoformat, now
from tests.conftest import DEMO_USERS, Api, reference_record
from tests.test_audit import tampering

NON_AUDITORS = [role for role in DEMO_USERS if role != "auditor"]
AUDIT_ROUTES = ["/audit/events", "/audit/verify"]


@pytest.fixture
def activity(api: Api) -> str:
    """A handover created, read, submitted and read by the day team: a few audit entries."""
    created = api.post("/handovers", as_="edt_worker", json_body=reference_record())
    hid: str = created.get_json()["id"]
    api.get(f"/handovers/{hid}", as_="edt_worker")
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    api.get(f"/handovers/{hid}", as_="social_worker")
    return hid


def events(api: Api, query: str = "") -> Any:
    response = api.get(f"/audit/events{query}", as_="auditor")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def user_id(app: Flask, role: str) -> str:
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS[role])
        assert user is not None
        return user.id


def test_auditor_reads_the_log_in_chain_order_without_content(api: Api, activity: str) -> None:
    page = events(api)
    actions = [event["action"] for event in page["events"]]
    assert actions == ["handover.created", "handover.view", "handover.submitted", "handover.view"]
    assert [event["seq"] for event in page["events"]] == [1, 2, 3, 4]
    assert page["next_offset"] is None
    first = page["events"][0]
    assert first["object_type"] == "handover" and first["object_id"] == activity
    assert first["at"].endswith("Z") and len(first["mac"]) == 64
    assert page["events"][1]["prev_mac"] == first["mac"]
    assert isinstance(first["details"], dict)
    text = api.get("/audit/events", as_="auditor").get_data(as_text=True)
    for value in ("Marsh", "Jaylen", "Larch Close"):
        assert value not in text


def test_filters_narrow_the_search(app: Flask, api: Api, activity: str) -> None:
    sam = user_id(app, "social_worker")
    by_actor = events(api, f"?actor_id={sam}")["events"]
    assert [(e["action"], e["actor_id"]) for e in by_actor] == [("handover.view", sam)]
    by_object = events(api, f"?object_id={activity}&action=handover.view")["events"]
    assert [e["seq"] for e in by_object] == [2, 4]
    assert events(api, "?action=handover.deleted")["events"] == []
    later = isoformat(now() + timedelta(hours=1))
    assert events(api, f"?from={later}")["events"] == []
    earlier = isoformat(now() - timedelta(hours=1))
    assert len(events(api, f"?from={earlier}&to={later}")["events"]) >= 4
    assert events(api, f"?to={earlier}")["events"] == []


def test_pages_follow_one_another(api: Api, activity: str) -> None:
    first = events(api, "?limit=3")
    assert [e["seq"] for e in first["events"]] == [1, 2, 3]
    assert first["next_offset"] == 3
    second = events(api, f"?limit=3&offset={first['next_offset']}")
    # The first search was itself audited, at seq 5; the second is written after it is read.
    assert [e["seq"] for e in second["events"]] == [4, 5]
    assert second["events"][1]["action"] == "audit.search"
    assert second["next_offset"] is None
    assert [e["seq"] for e in events(api, "?offset=5")["events"]] == [6]


def test_searches_and_verifications_are_themselves_audited(
    app: Flask, api: Api, activity: str
) -> None:
    events(api, f"?object_id={activity}")
    api.get("/audit/verify", as_="auditor")
    with app.app_context(), transaction() as session:
        rows = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2))
        latest = [(e.action, e.actor_id) for e in rows]
    auditor = user_id(app, "auditor")
    assert latest == [("audit.verify", auditor), ("audit.search", auditor)]


def test_verify_reports_a_sound_chain(api: Api, activity: str) -> None:
    response = api.get("/audit/verify", as_="auditor")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "checked": 4, "problem": None, "bad_seq": None}


def test_verify_names_the_first_altered_entry(app: Flask, api: Api, activity: str) -> None:
    with tampering(app) as session:
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3).values(action="x"))
    result = api.get("/audit/verify", as_="auditor").get_json()
    assert result == {"ok": False, "checked": 2, "problem": "entry altered", "bad_seq": 3}


BAD_QUERIES = [
    ("?from=yesterday", "from"),
    ("?to=2026-13-01T00:00:00Z", "to"),
    ("?from=2026-11-28T02:10:00", "from"),  # no offset: which 02:10?
    ("?limit=0", "limit"),
    ("?limit=1001", "limit"),
    ("?offset=-1", "offset"),
    ("?action=" + "x" * 61, "action"),
    ("?actor_id=", "actor_id"),
]


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES)
def test_bad_search_parameters_are_named(api: Api, query: str, field: str) -> None:
    response = api.get(f"/audit/events{query}", as_="auditor")
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("role", NON_AUDITORS)
def test_nobody_else_reads_the_audit_log(app: Flask, api: Api, activity: str, role: str) -> None:
    for path in AUDIT_ROUTES:
        response = api.get(path, as_=role)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"
        assert "handover.created" not in response.get_data(as_text=True)
    with app.app_context(), transaction() as session:
        denied = session.scalars(
            sa.select(AuditEvent.actor_id).where(AuditEvent.action == "access.denied")
        ).all()
    assert denied == [user_id(app, role)] * len(AUDIT_ROUTES)


@pytest.mark.parametrize("path", AUDIT_ROUTES)
def test_the_audit_log_needs_a_valid_token(api: Api, activity: str, path: str) -> None:
    assert api.client.get(f"/api/v1{path}").status_code == 401
    forged = api.client.get(f"/api/v1{path}", headers={"Authorization": "Bearer hov_forged"})
    assert forged.status_code == 401
    assert "handover.created" not in forged.get_data(as_text=True)
