"""No record content reaches the database, the logs or error responses in plaintext.

The whole reference handover goes through create, edit, submit, addendum, reads and failures;
then the raw SQLite files (database, WAL) or every PostgreSQL row, and every captured log line,
are searched for each name, date of birth, NHS number, address and narrative string it holds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover.config import PROJECT_ROOT
from handover.db import Base, transaction
from tests.conftest import Api, reference_record

ROUTING = {"local_authority", "allocated_team", "urgency", "team_code"}
CODE = re.compile(r"^[a-z][a-z0-9_-]*$")


def _leaves(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    elif isinstance(value, str) and key not in ROUTING:
        yield value


def secrets() -> set[str]:
    """Every content string of the fixture, less enum codes, refs and directory names."""
    directory_text = (PROJECT_ROOT / "config" / "directory.example.toml").read_text()
    found = set()
    for text in _leaves(reference_record()):
        if len(text) < 5 or CODE.match(text) or text in directory_text:
            continue
        found.add(text)
        # Also the most identifying fragments on their own: surname, NHS number, postcode.
        found.update(w for w in re.findall(r"[A-Z]{2}\d \d[A-Z]{2}|\d{10}", text))
    return found


def test_the_secret_list_is_meaningful() -> None:
    found = secrets()
    for expected in (
        "Jaylen",
        "Marsh",
        "9995908301",
        "2026-07-24",
        "14 Larch Close",
        "NV4 7QT",
        "WS/26/118734",
        "Tianna said she fed the baby at midnight",
    ):
        assert any(expected in s for s in found), expected


def _exercise(app: Flask, api: Api) -> None:
    record = reference_record()
    hid = api.post(
        "/handovers", as_="edt_worker", json_body={"summary": record["summary"]}
    ).get_json()["id"]
    api.patch(f"/handovers/{hid}", as_="edt_worker", json_body=record)
    bad = dict(record, children=[dict(record["children"][0], sex="unknown-value")])
    assert api.patch(f"/handovers/{hid}", as_="edt_worker", json_body=bad).status_code == 422
    assert api.post(f"/handovers/{hid}/submit", as_="edt_worker").status_code == 200
    api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={
            "note": "Grandmother Gloria Marsh admitted to hospital; "
            "children now with aunt at 9 Oak Row NV3 2BB.",
            "changes": {"contingency": record["contingency"] + " Aunt: Paulette Marsh, 9 Oak Row."},
        },
    )
    api.get(f"/handovers/{hid}", as_="social_worker")
    api.get(f"/handovers/{hid}", as_="police_officer", headers={"X-Access-Purpose": "joint s47"})
    api.get(f"/handovers/{hid}/export?system=mosaic&format=csv", as_="social_worker")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context(), transaction() as session:  # make one record unreadable: an error path
        session.execute(
            sa.text(
                "UPDATE handover_section SET ciphertext = (SELECT ciphertext FROM handover_section "
                "WHERE section = 'summary' LIMIT 1) WHERE section = 'children'"
            )
        )
    assert api.get(f"/handovers/{hid}", as_="edt_worker").status_code == 500


def _database_bytes(app: Flask) -> bytes:
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        base = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in base.parent.glob(base.name + "*"))
    chunks = []
    with app.app_context(), transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(sa.text(f'SELECT CAST(t.* AS text) FROM "{table.name}" t')):
                chunks.append(str(row[0]).encode())
    return b"\n".join(chunks)


def test_no_content_in_database_or_logs(
    app: Flask, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements, params hidden
    try:
        _exercise(app, api)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    stored = _database_bytes(app)
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert b"erin.walsh@tri-borough.example" in stored  # the scan really reads the rows
    assert "INSERT INTO handover_section" in logs  # the logs were really captured
    assert "record unreadable" in logs
    extra = {"Gloria Marsh", "9 Oak Row", "NV3 2BB", "Paulette"}
    leaked_db = sorted(s for s in secrets() | extra if s.encode() in stored)
    leaked_logs = sorted(s for s in secrets() | extra if s in logs)
    assert leaked_db == []
    assert leaked_logs == []
