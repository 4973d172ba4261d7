"""The handover API end to end: create, read, edit, submit, addenda, export, and bad input."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.db import transaction
from handover.records.models import Handover, HandoverSection
from tests.conftest import Api, reference_record


def create(api: Api, record: dict[str, Any] | None = None, *, as_: str = "edt_worker") -> Any:
    response = api.post(
        "/handovers", as_=as_, json_body=reference_record() if record is None else record
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count_handovers(app: Flask) -> int:
    with app.app_context(), transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Handover)) or 0


def test_reference_record_round_trips_exactly(api: Api) -> None:
    created = create(api)
    assert re.fullmatch(r"HO-\d{4}-\d{6}", created["reference"])
    assert created["status"] == "draft"
    assert created["completeness"] == 100
    response = api.get(f"/handovers/{created['id']}", as_="edt_worker")
    assert response.status_code == 200
    assert response.get_json()["record"] == reference_record()


def test_references_are_sequential(api: Api) -> None:
    first, second = create(api, {"summary": "a"}), create(api, {"summary": "b"})
    assert int(second["reference"][-6:]) == int(first["reference"][-6:]) + 1


def test_draft_accepts_partial_record_and_patch_merges_by_section(api: Api) -> None:
    partial = {"local_authority": "northvale", "summary": "Call from police at 02:10."}
    created = create(api, partial)
    assert created["completeness"] < 50
    full = reference_record()
    patch = {"children": full["children"], "urgency": "priority"}
    response = api.patch(f"/handovers/{created['id']}", as_="edt_worker", json_body=patch)
    assert response.status_code == 200
    assert response.get_json()["completeness"] > created["completeness"]
    record = api.get(f"/handovers/{created['id']}", as_="edt_worker").get_json()["record"]
    assert record["summary"] == partial["summary"]
    assert record["children"] == full["children"]
    assert record["urgency"] == "priority"
    cleared = api.patch(
        f"/handovers/{created['id']}", as_="edt_worker", json_body={"summary": None}
    )
    assert cleared.status_code == 200
    record = api.get(f"/handovers/{created['id']}", as_="edt_worker").get_json()["record"]
    assert "summary" not in record


def _break(path: str, value: Any) -> dict[str, Any]:
    record = reference_record()
    target: Any = record
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is KeyError:
        del target[int(last) if isinstance(target, list) else last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return record


SUBMIT_RULES = [
    ("children", [], "children"),
    ("children.1.date_of_birth", KeyError, "children.1.date_of_birth"),
    ("children.2.whereabouts_now", KeyError, "children.2.whereabouts_now"),
    ("children.3.needs_and_risks", "", "children.3.needs_and_risks"),
    ("children.1.date_of_birth", "2099-01-01", "children.1.date_of_birth"),
    ("household.0.relationships.0.to", "c99", "household.0.relationships.0.to"),
    ("actions", [], "actions"),
    ("actions.0.due_by", KeyError, "actions.0.due_by"),
    ("summary", " ", "summary"),
    ("contingency", KeyError, "contingency"),
    ("police.crime_reference", KeyError, None),
]


@pytest.mark.parametrize(("path", "value", "field"), SUBMIT_RULES)
def test_submit_rejects_each_rule_with_its_field_path(
    api: Api, path: str, value: Any, field: str | None
) -> None:
    created = create(api, _break(path, value))
    response = api.post(f"/handovers/{created['id']}/submit", as_="edt_worker")
    if field is None:  # an incident reference alone still satisfies the police rule
        assert response.status_code == 200
        return
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert field in error["fields"], error["fields"]
    after = api.get(f"/handovers/{created['id']}", as_="edt_worker").get_json()
    assert after["status"] == "draft"


def test_submit_schedules_locks_and_addenda_add_versions(api: Api) -> None:
    created = create(api)
    submitted = api.post(f"/handovers/{created['id']}/submit", as_="edt_worker")
    assert submitted.status_code == 200
    body = submitted.get_json()
    assert body["status"] == "scheduled"
    assert body["due_at"].endswith("Z")
    hid = created["id"]
    locked = api.patch(f"/handovers/{hid}", as_="edt_worker", json_body={"summary": "changed"})
    assert locked.status_code == 409
    assert locked.get_json()["error"]["code"] == "invalid_transition"
    again = api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    assert again.status_code == 409

    plan = reference_record()["safety_plans"]
    plan[0]["arrangements"] = "Moved to maternal aunt after grandmother taken ill."
    addendum = api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={
            "note": "Grandmother admitted to hospital at 07:00.",
            "changes": {"safety_plans": plan},
        },
    )
    assert addendum.status_code == 201, addendum.get_json()
    assert addendum.get_json() == {"id": hid, "version": 2, "sections": ["safety_plans"]}

    detail = api.get(f"/handovers/{hid}", as_="social_worker").get_json()
    assert detail["current_version"] == 2
    assert detail["record"]["safety_plans"][0]["arrangements"].startswith("Moved to maternal aunt")
    assert detail["record"]["children"] == reference_record()["children"]
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert detail["versions"][1]["note"] == "Grandmother admitted to hospital at 07:00."
    assert detail["versions"][1]["sections"] == ["safety_plans"]
    assert [e["kind"] for e in detail["events"]] == ["created", "submitted", "addendum"]


def test_addendum_that_breaks_the_standard_is_refused(api: Api) -> None:
    hid = create(api)["id"]
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    response = api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={"note": "oops", "changes": {"actions": []}},
    )
    assert response.status_code == 422
    assert "changes.actions" in response.get_json()["error"]["fields"]
    detail = api.get(f"/handovers/{hid}", as_="edt_worker").get_json()
    assert detail["current_version"] == 1


def test_original_version_is_kept_after_addendum(app: Flask, api: Api) -> None:
    hid = create(api)["id"]
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={"note": "n", "changes": {"contingency": "New contingency."}},
    )
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(HandoverSection).where(
                HandoverSection.handover_id == hid, HandoverSection.section == "contingency"
            )
        ).all()
    assert sorted(r.version for r in rows) == [1, 2]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b'{"summary": ', "application/json", 400, None),
        (b'{"summary": NaN}', "application/json", 400, None),
        (b"[1, 2]", "application/json", 400, "_schema"),
        (b'{"summary": "x"}', "text/plain", 415, None),
        (b'{"children": "Jaylen"}', "application/json", 422, "children"),
        (b'{"urgency": "asap"}', "application/json", 422, "urgency"),
        (b'{"favourite_colour": "red"}', "application/json", 422, "favourite_colour"),
        (b'{"children": [{"ref": "c1", "pet": "dog"}]}', "application/json", 422, "children.0.pet"),
        (
            b'{"children": [{"interpreter_needed": "yes"}]}',
            "application/json",
            422,
            "children.0.interpreter_needed",
        ),
        (b'{"local_authority": "atlantis"}', "application/json", 422, "local_authority"),
        (b'{"template_version": 2}', "application/json", 422, "template_version"),
        (
            b'{"children": [{"nhs_number": "9434765918"}]}',
            "application/json",
            422,
            "children.0.nhs_number",
        ),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_stored(
    app: Flask, api: Api, body: bytes, content_type: str, status: int, field: str | None
) -> None:
    response = api.client.post(
        "/api/v1/handovers",
        data=body,
        headers={
            "Authorization": f"Bearer {api.tokens['edt_worker']}",
            "Content-Type": content_type,
        },
    )
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["message"]
    if field:
        assert field in error["fields"], error
    assert count_handovers(app) == 0


def test_oversize_body_is_refused(app: Flask, api: Api) -> None:
    record = reference_record()
    record["summary"] = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = api.post("/handovers", as_="edt_worker", json_body=record)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    assert count_handovers(app) == 0


def test_patch_with_bad_input_leaves_the_draft_as_it_was(api: Api) -> None:
    hid = create(api)["id"]
    response = api.patch(
        f"/handovers/{hid}",
        as_="edt_worker",
        json_body={"summary": "new", "children": [{"sex": "robot"}]},
    )
    assert response.status_code == 422
    assert "children.0.sex" in response.get_json()["error"]["fields"]
    assert api.get(f"/handovers/{hid}", as_="edt_worker").get_json()["record"] == reference_record()


def test_idempotency_key_returns_the_first_result(app: Flask, api: Api) -> None:
    headers = {"Idempotency-Key": "edt-laptop-7f3a-0001"}
    first = api.post("/handovers", as_="edt_worker", json_body={"summary": "a"}, headers=headers)
    second = api.post("/handovers", as_="edt_worker", json_body={"summary": "a"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert count_handovers(app) == 1
    other = api.post("/handovers", as_="edt_worker", json_body={"summary": "b"}, headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["error"]["fields"]
    assert count_handovers(app) == 1


def test_list_shows_metadata_only_with_filters(api: Api) -> None:
    draft = create(api, {"summary": "draft one", "local_authority": "northvale"})
    submitted = create(api)
    api.post(f"/handovers/{submitted['id']}/submit", as_="edt_worker")
    listing = api.get("/handovers", as_="edt_worker").get_json()["handovers"]
    assert {h["id"] for h in listing} == {draft["id"], submitted["id"]}
    assert all("record" not in h and "summary" not in h for h in listing)
    drafts = api.get("/handovers?status=draft", as_="edt_worker").get_json()["handovers"]
    assert [h["id"] for h in drafts] == [draft["id"]]
    team_view = api.get("/handovers?team=northvale-east-fst", as_="social_worker").get_json()
    assert [h["id"] for h in team_view["handovers"]] == [submitted["id"]]
    bad = api.get("/handovers?status=lost", as_="edt_worker")
    assert bad.status_code == 400 and "status" in bad.get_json()["error"]["fields"]


def test_who_may_see_what(api: Api) -> None:
    hid = create(api)["id"]
    # A draft is the EDT team's alone.
    assert api.get(f"/handovers/{hid}", as_="social_worker").status_code == 404
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    assert api.get(f"/handovers/{hid}", as_="social_worker").status_code == 200
    assert api.get(f"/handovers/{hid}", as_="southmoor_worker").status_code == 404
    assert api.get(f"/handovers/{hid}", as_="admin").status_code == 404
    assert api.get(f"/handovers/{hid}", as_="auditor").status_code == 404
    assert api.get("/handovers/not-a-uuid", as_="edt_worker").status_code == 404
    refused = api.get(f"/handovers/{hid}", as_="police_officer")
    assert refused.status_code == 400
    assert "X-Access-Purpose" in refused.get_json()["error"]["fields"]
    police = api.get(
        f"/handovers/{hid}",
        as_="police_officer",
        headers={"X-Access-Purpose": "s47 joint investigation WS/26/118734"},
    )
    assert police.status_code == 200
    record = police.get_json()["record"]
    assert "consent" not in record and "equality_and_diversity" not in record
    assert api.patch(f"/handovers/{hid}", as_="social_worker", json_body={}).status_code == 403
    assert api.post("/handovers", as_="police_officer", json_body={}).status_code == 403


def test_requests_without_valid_token_are_401(api: Api) -> None:
    assert api.client.get("/api/v1/handovers").status_code == 401
    response = api.client.get("/api/v1/handovers", headers={"Authorization": "Bearer hov_wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_events_give_the_history(api: Api) -> None:
    hid = create(api)["id"]
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    events = api.get(f"/handovers/{hid}/events", as_="social_worker").get_json()["events"]
    assert [(e["kind"], e["from"], e["to"]) for e in events] == [
        ("created", "draft", "draft"),
        ("submitted", "draft", "scheduled"),
    ]
    assert events[0]["actor"]["name"] == "Erin Walsh"


def test_export_through_a_mapping_as_json_and_csv(api: Api) -> None:
    hid = create(api)["id"]
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    as_json = api.get(f"/handovers/{hid}/export?system=mosaic&format=json", as_="social_worker")
    assert as_json.status_code == 200, as_json.get_json()
    people = as_json.get_json()["people"]
    assert len(people) == 6
    assert "9995908301" in people[0].values()
    as_csv = api.get(f"/handovers/{hid}/export?system=mosaic&format=csv", as_="social_worker")
    assert as_csv.status_code == 200
    assert as_csv.mimetype == "text/csv"
    assert len(as_csv.get_data(as_text=True).strip().splitlines()) == 7
    assert api.get(f"/handovers/{hid}/export?system=mosaic", as_="edt_worker").status_code == 403
    unknown = api.get(f"/handovers/{hid}/export?system=carefirst", as_="social_worker")
    assert unknown.status_code == 404


def test_openapi_document_covers_every_api_route(app: Flask, api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {
        (path, method)
        for path, ops in spec["paths"].items()
        for method in ops
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", "{id}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)
    record = spec["components"]["schemas"]["HandoverRecord"]["properties"]
    assert {"children", "household", "safety_plans", "actions"} <= set(record)


def test_changes_by_another_team_member_are_the_teams(api: Api) -> None:
    hid = create(api)["id"]
    response = api.patch(f"/handovers/{hid}", as_="edt_manager", json_body={"urgency": "routine"})
    assert response.status_code == 200
    record = api.get(f"/handovers/{hid}", as_="edt_worker").get_json()["record"]
    expected = copy.deepcopy(reference_record())
    expected["urgency"] = "routine"
    assert record == expected


def test_codes_are_checked_against_the_directory_each_by_name(app: Flask, api: Api) -> None:
    added = api.post(
        "/admin/local-authorities", as_="admin", json_body={"code": "westvale", "name": "Westvale"}
    )
    assert added.status_code == 201, added.get_json()
    refused = {
        "atlantis": {"local_authority": ["No local authority 'atlantis'."]},
        "westvale": {"local_authority": ["Your team does not cover 'westvale'."]},
    }
    for code, fields in refused.items():
        response = api.post("/handovers", as_="edt_worker", json_body={"local_authority": code})
        assert (response.status_code, response.get_json()["error"]["fields"]) == (422, fields)
    wrong_kinds = {
        "local_authority": "atlantis",
        "allocated_team": "westshire-cait",  # a police team
        "police": {"team_code": "southmoor-fst"},  # a social work team
    }
    response = api.post("/handovers", as_="edt_worker", json_body=wrong_kinds)
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {
        "local_authority": ["No local authority 'atlantis'."],
        "allocated_team": ["No daytime social work team 'westshire-cait'."],
        "police.team_code": ["No police team 'southmoor-fst'."],
    }
    assert count_handovers(app) == 0
    right = {
        "local_authority": "southmoor",
        "allocated_team": "southmoor-fst",
        "police": {"team_code": "westshire-cait"},
    }
    assert create(api, right)["status"] == "draft"
