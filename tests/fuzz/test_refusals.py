"""Odd input that used to answer 500, now refused with a 4xx naming the field, storing nothing.

Each case is one the fuzzing found (or its neighbour): a NUL character, which PostgreSQL cannot
store in text; digits that are not ASCII; JSON nested past the parser's depth; timestamps with no
UTC or London time; a method the path does not take (405 must say which it does).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.audit import AuditEvent
from handover.db import transaction
from handover.records.models import Handover
from tests.conftest import Api

NUL_IN_REQUEST = [
    ("GET", "/teams/a%00b/inbox", "social_worker", {}, "path"),
    ("GET", "/admin/teams/a%00b", "admin", {}, "path"),
    ("GET", "/handovers?team=a%00b", "edt_worker", {}, "team"),
    ("GET", "/admin/users?team=a%00b", "admin", {}, "team"),
    ("GET", "/audit/events?action=a%00b", "auditor", {}, "action"),
    ("GET", "/handovers", "police_officer", {"X-Access-Purpose": "s47\x00"}, "X-Access-Purpose"),
    ("POST", "/handovers", "edt_worker", {"Idempotency-Key": "k\x00"}, "Idempotency-Key"),
]


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context(), transaction() as session:
        handovers = session.scalar(sa.select(sa.func.count()).select_from(Handover))
        entries = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        return handovers or 0, entries or 0


@pytest.mark.parametrize(("method", "path", "role", "headers", "field"), NUL_IN_REQUEST)
def test_a_nul_character_in_the_request_is_400_naming_where(
    app: Flask, api: Api, method: str, path: str, role: str, headers: Any, field: str
) -> None:
    body = {"summary": "Call from police at 02:10."} if method == "POST" else None
    before = _counts(app)
    response = api.request(method, path, as_=role, json_body=body, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["fields"] == {
        field: ["Must not contain the NUL character."]
    }
    assert _counts(app) == before


@pytest.mark.parametrize(
    ("path", "role", "body", "field"),
    [
        ("/handovers", "edt_worker", {"summary": "a\x00b"}, "summary"),
        (
            "/handovers",
            "edt_worker",
            {"children": [{"first_name": "\x00"}]},
            "children.0.first_name",
        ),
        ("/handovers", "edt_worker", {"local_authority": "north\x00vale"}, "local_authority"),
        ("/admin/local-authorities", "admin", {"code": "westvale", "name": "W\x00"}, "name"),
    ],
)
def test_a_nul_character_in_the_body_is_422_naming_the_field(
    app: Flask, api: Api, path: str, role: str, body: Any, field: str
) -> None:
    before = _counts(app)
    response = api.post(path, as_=role, json_body=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["fields"] == {
        field: ["Must not contain the NUL character."]
    }
    assert _counts(app) == before


@pytest.mark.parametrize(
    ("path", "role", "field"),
    [
        ("/handovers?limit=%C2%B2", "edt_worker", "limit"),  # "²" is a digit, but not a number
        ("/handovers?offset=%D9%A3", "edt_worker", "offset"),  # Arabic-Indic three
        ("/audit/events?limit=%C2%B2", "auditor", "limit"),
        ("/teams/northvale-east-fst/inbox?limit=%C2%B9", "social_worker", "limit"),
    ],
)
def test_numbers_must_be_ascii_digits(api: Api, path: str, role: str, field: str) -> None:
    response = api.get(path, as_=role)
    assert response.status_code == 400, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [field]


def _create_from_text(api: Api, body: str) -> Any:
    """POST a body exactly as written, as an EDT worker creating a handover."""
    return api.client.post(
        "/api/v1/handovers",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.tokens['edt_worker']}"},
    )


@pytest.mark.parametrize(
    "body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000]
)
def test_json_nested_too_deeply_is_400(app: Flask, api: Api, body: str) -> None:
    before = _counts(app)
    response = _create_from_text(api, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == {
        "code": "bad_json",
        "message": "The body is not valid JSON: nested too deeply.",
        "fields": {},
    }
    assert _counts(app)[0] == before[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # Beyond 64 bits the JSON parser reads a float: refused as the integer was, by name.
        ('{"template_version": 100000000000000000000000000001}', "template_version"),
        ('{"summary": 100000000000000000000000000001}', "summary"),
        ('{"children": [{"first_name": 18446744073709551617}]}', "children.0.first_name"),
    ],
)
def test_an_integer_past_64_bits_is_422_naming_the_field(
    app: Flask, api: Api, body: str, field: str
) -> None:
    before = _counts(app)
    response = _create_from_text(api, body)
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [field]
    assert _counts(app) == before


@pytest.mark.parametrize(
    ("body", "where"),
    [('{"summary": "\\ud800"}', "line 1 column"), ('{"summary": Infinity}', "line 1 column 13")],
)
def test_a_lone_surrogate_or_infinity_is_400_saying_where(
    app: Flask, api: Api, body: str, where: str
) -> None:
    before = _counts(app)
    response = _create_from_text(api, body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "bad_json"
    assert error["message"].startswith(f"The body is not valid JSON: {where}")
    assert _counts(app) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=0001-01-01T00:00:00%2B01:00", "from"), ("to=9999-12-31T23:59:59-01:00", "to")],
)
def test_an_audit_search_beyond_the_calendar_is_400(api: Api, query: str, field: str) -> None:
    response = api.get(f"/audit/events?{query}", as_="auditor")
    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == [field]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"])
def test_a_record_timestamp_with_no_london_time_is_refused(
    app: Flask, api: Api, moment: str
) -> None:
    """Before, such a record was stored, and its export answered 500 for ever after submit."""
    before = _counts(app)
    body = {"contact": {"received_at": moment}, "timeline": [{"at": "2026-11-28T02:10:00Z"}]}
    response = api.post("/handovers", as_="edt_worker", json_body=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {
        "contact.received_at": ["Not a representable date and time."]
    }
    assert _counts(app)[0] == before[0]


def test_a_method_the_path_does_not_take_is_405_with_allow(api: Api) -> None:
    response = api.request("TRACE", "/handovers", as_="edt_worker")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    response = api.request("PUT", "/audit/verify", as_="auditor")
    assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD, OPTIONS")
