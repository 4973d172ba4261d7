"""Structured logs as an operator reads them: JSON lines, request ids, no content, no queries."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from handover.db import transaction
from handover.directory import service as directory
from tests.conftest import DEMO_USERS, Api, reference_record
from tests.test_plaintext import secrets

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line written, parsed: a line that is not one JSON object fails the test."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "handover.access"]


def _user_id(app: Flask, role: str) -> str:
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS[role])
        assert user is not None
        return user.id


def _file_the_reference_record(api: Api) -> None:
    """Create, read, break, submit and list the reference record, some of it via query strings."""
    record = reference_record()
    created = api.post(
        "/handovers", as_="edt_worker", json_body=record, headers={"X-Request-Id": "edt-42.a_b"}
    )
    assert created.status_code == 201
    hid = created.get_json()["id"]
    broken = dict(record, children=[dict(record["children"][0], sex="Jaylen Marsh")])
    assert api.patch(f"/handovers/{hid}", as_="edt_worker", json_body=broken).status_code == 422
    assert api.post(f"/handovers/{hid}/submit", as_="edt_worker").status_code == 200
    assert api.get(f"/handovers/{hid}", as_="social_worker").status_code == 200
    surname = record["children"][0]["last_name"]
    listed = api.get(f"/handovers?status=scheduled&name={surname}&nhs=9995908301", as_="edt_worker")
    assert listed.status_code in (200, 422)


def test_request_lines_are_json_with_ids_and_no_content_or_query(
    app: Flask, api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    _file_the_reference_record(api)
    output = capfd.readouterr().err
    lines = json_lines(output)
    access = access_lines(lines)
    assert [line["method"] for line in access] == ["POST", "PATCH", "POST", "GET", "GET"]
    first = access[0]
    assert first["request_id"] == "edt-42.a_b"
    assert first["path"] == "/api/v1/handovers"
    assert first["status"] == 201
    assert first["endpoint"] == "records_api.create_handover"
    assert first["user_id"] == _user_id(app, "edt_worker")
    assert isinstance(first["duration_ms"], float)
    assert {"time", "level", "logger", "message"} <= first.keys()
    assert access[1]["status"] == 422
    assert access[3]["user_id"] == _user_id(app, "social_worker")
    assert access[4]["path"] == "/api/v1/handovers"
    assert all(GENERATED_ID.fullmatch(line["request_id"]) for line in access[1:])
    assert "?" not in output and "status=scheduled" not in output
    for text in ("Erin Walsh", DEMO_USERS["edt_worker"], *secrets()):
        assert text not in output, text


def test_request_id_is_echoed_when_well_formed(api: Api) -> None:
    given = "A" * 64
    response = api.get("/handovers", as_="edt_worker", headers={"X-Request-Id": given})
    assert response.headers["X-Request-Id"] == given


@pytest.mark.parametrize(
    "bad",
    ["has spaces", "A" * 65, "<script>", "id;rm", "café", ""],
)
def test_a_malformed_request_id_is_replaced(
    api: Api, bad: str, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    response = api.get("/handovers", as_="edt_worker", headers={"X-Request-Id": bad})
    echoed = response.headers["X-Request-Id"]
    assert GENERATED_ID.fullmatch(echoed)
    [line] = access_lines(json_lines(capfd.readouterr().err))
    assert line["request_id"] == echoed


def test_every_response_has_a_request_id_even_unauthenticated_and_unknown(app: Flask) -> None:
    client = app.test_client()
    for path in ("/api/v1/handovers", "/no-such-page", "/healthz"):
        assert GENERATED_ID.fullmatch(client.get(path).headers["X-Request-Id"])


def test_an_unhandled_exception_is_logged_with_type_and_frames_but_not_its_message(
    app: Flask, capfd: pytest.CaptureFixture[str]
) -> None:
    child = reference_record()["children"][0]

    def explode() -> str:
        raise ValueError(f"{child['first_name']} {child['last_name']} {child['nhs_number']}")

    app.add_url_rule("/explode", "explode", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    capfd.readouterr()
    response = app.test_client().get("/explode?nhs=9995908301")
    assert response.status_code == 500
    output = capfd.readouterr().err
    lines = json_lines(output)
    [error] = [line for line in lines if "exc_type" in line]
    assert error["level"] == "ERROR"
    assert error["exc_type"] == "builtins.ValueError"
    assert "in explode" in error["traceback"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert error["path"] == "/explode"
    assert access_lines(lines)[0]["status"] == 500
    for text in (child["first_name"], child["last_name"], child["nhs_number"], "?nhs"):
        assert text not in output
