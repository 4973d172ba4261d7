"""Audiences: each reader's record carries only the fields their audience's list names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from marshmallow import Schema, fields

from handover.db import transaction
from handover.records import schemas
from handover.records.models import Handover
from handover.records.schemas import AUDIENCE_FIELDS, METADATA_FIELDS, HandoverRecordSchema
from tests.conftest import Api, reference_record

PURPOSE = {"X-Access-Purpose": "s47 joint investigation WS/26/118734"}
EXCLUDED_FROM_POLICE = {"equality_and_diversity", "consent.obtained", "consent.details"}
REFERRER = {"contact.referrer_name", "contact.referrer_agency", "contact.referrer_phone"}


def leaves(schema: Schema, prefix: str = "") -> set[str]:
    """Every leaf field path of a record schema ("children.address.postcode")."""
    found: set[str] = set()
    for name, field in schema.fields.items():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            found |= leaves(inner.schema, f"{prefix}{name}.")
        else:
            found.add(prefix + name)
    return found


def health_referred() -> dict[str, Any]:
    record = reference_record()
    record["contact"] = {
        "received_at": "2026-11-28T01:40:00Z",
        "source": "health",
        "referrer_name": "Staff Nurse Imogen Tarrant",
        "referrer_agency": "Westvale Community Midwives",
        "referrer_phone": "01632 960 777",
    }
    return record


def submitted(api: Api, record: dict[str, Any]) -> str:
    created = api.post("/handovers", as_="edt_worker", json_body=record)
    assert created.status_code == 201, created.get_json()
    hid: str = created.get_json()["id"]
    assert api.post(f"/handovers/{hid}/submit", as_="edt_worker").status_code == 200
    return hid


# The field lists.


def test_edt_and_team_read_every_field_of_the_record() -> None:
    every = leaves(HandoverRecordSchema())
    assert set(AUDIENCE_FIELDS["edt"]) == every
    assert set(AUDIENCE_FIELDS["team"]) == every


def test_police_read_everything_but_equality_and_consent() -> None:
    police = set(AUDIENCE_FIELDS["police"])
    assert set(AUDIENCE_FIELDS["team"]) - police == EXCLUDED_FROM_POLICE
    assert REFERRER <= police  # listed, but dumped only when police referred
    assert AUDIENCE_FIELDS["metadata"] == ()


def test_lists_name_no_field_twice() -> None:
    for audience, paths in AUDIENCE_FIELDS.items():
        assert len(paths) == len(set(paths)), audience


def test_a_field_no_list_names_reaches_no_audience() -> None:
    record = reference_record()
    record["favourite_colour"] = "red"
    record["contact"]["referrer_home_address"] = "1 Secret Lane"
    record["children"][0]["pet"] = "dog"
    record["children"][0]["address"]["grid_reference"] = "ST 58 72"
    for audience in ("edt", "team", "police", "metadata"):
        dumped = schemas.dump_record(audience, record)
        assert "favourite_colour" not in dumped
        assert "referrer_home_address" not in dumped.get("contact", {})
        for child in dumped.get("children", []):
            assert "pet" not in child and "grid_reference" not in child["address"]


def test_edt_and_team_dump_the_record_unchanged() -> None:
    for audience in ("edt", "team"):
        assert schemas.dump_record(audience, reference_record()) == reference_record()


@pytest.mark.parametrize(("source", "shown"), [("police", True), ("health", False), (None, False)])
def test_police_dump_holds_the_referrer_only_when_police_referred(
    source: str | None, shown: bool
) -> None:
    record = reference_record()
    record["contact"]["source"] = source
    dumped = schemas.dump_record("police", record)
    assert ("referrer_name" in dumped["contact"]) is shown
    assert dumped["contact"]["received_at"] == record["contact"]["received_at"]
    assert "consent" not in dumped and "equality_and_diversity" not in dumped
    assert dumped["police"] == record["police"]


def test_metadata_audience_is_reference_la_team_status_and_dates() -> None:
    moment = datetime(2026, 11, 28, 2, 10, tzinfo=UTC)
    handover = Handover(
        id="6f1c1d52-5d2e-4c3e-9d1a-0d6b8f0e7a11",
        reference="HO-2026-000001",
        status="delivered",
        urgency="immediate",
        local_authority_code="southmoor",
        allocated_team_code="southmoor-fst",
        team_code="southmoor-fst",
        author_team_code="tri-borough-edt",
        police_team_code="westshire-cait",
        created_by_id="6f1c1d52-5d2e-4c3e-9d1a-0d6b8f0e7a12",
        **{name: moment for name in METADATA_FIELDS if name.endswith("_at")},
    )
    dumped = schemas.dump_metadata(handover)
    assert dumped == {
        "reference": "HO-2026-000001",
        "local_authority": "southmoor",
        "team": "southmoor-fst",
        "status": "delivered",
        **{name: "2026-11-28T02:10:00Z" for name in METADATA_FIELDS if name.endswith("_at")},
    }
    assert schemas.dump_record("metadata", reference_record()) == {}


# Through the API.


def test_police_get_no_referrer_consent_or_equality_notes(api: Api) -> None:
    hid = submitted(api, health_referred())
    response = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE)
    assert response.status_code == 200
    record = response.get_json()["record"]
    assert record["contact"] == {"received_at": "2026-11-28T01:40:00Z", "source": "health"}
    assert "consent" not in record and "equality_and_diversity" not in record
    assert record["children"] == reference_record()["children"]
    text = response.get_data(as_text=True)
    for secret in ("Imogen Tarrant", "Westvale", "960 777", "Jamaican heritage", "consented"):
        assert secret not in text
    team = api.get(f"/handovers/{hid}", as_="social_worker").get_json()["record"]
    assert team == health_referred()


def test_police_get_the_referrer_when_police_referred(api: Api) -> None:
    hid = submitted(api, reference_record())
    record = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE).get_json()
    assert record["record"]["contact"] == reference_record()["contact"]


def _scramble(app: Flask, hid: str, *sections: str) -> None:
    """Make sections undecryptable: another section's ciphertext fails their associated data."""
    with app.app_context(), transaction() as session:
        session.execute(
            sa.text(
                "UPDATE handover_section SET ciphertext = (SELECT ciphertext FROM handover_section "
                "WHERE handover_id = :id AND section = 'summary') "
                "WHERE handover_id = :id AND section IN :sections"
            ).bindparams(sa.bindparam("sections", expanding=True)),
            {"id": hid, "sections": list(sections)},
        )


def test_police_reads_never_decrypt_what_they_may_not_read(app: Flask, api: Api) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    hid = submitted(api, health_referred())
    _scramble(app, hid, "contact_referrer", "consent", "equality_and_diversity")
    police = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE)
    assert police.status_code == 200
    assert police.get_json()["record"]["contact"]["source"] == "health"
    team = api.get(f"/handovers/{hid}", as_="social_worker")
    assert team.status_code == 500
    assert team.get_json()["error"]["code"] == "record_unreadable"


def test_police_decrypt_the_referrer_only_after_reading_the_source(app: Flask, api: Api) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    hid = submitted(api, reference_record())  # referred by police
    _scramble(app, hid, "contact_referrer")
    police = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE)
    assert police.status_code == 500  # it is read, because police referred


def test_police_versions_name_only_sections_they_read(api: Api) -> None:
    hid = submitted(api, health_referred())
    consent = {"obtained": False, "details": "Mother withdrew consent at 09:10."}
    addendum = api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={"note": "Consent withdrawn.", "changes": {"consent": consent}},
    )
    assert addendum.status_code == 201
    police = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE).get_json()
    assert police["versions"][1]["sections"] == []
    assert police["versions"][1]["note"] is None  # the note is about consent
    assert "consent" not in police["record"]
    team = api.get(f"/handovers/{hid}", as_="social_worker").get_json()
    assert team["versions"][1]["sections"] == ["consent"]
    assert team["versions"][1]["note"] == "Consent withdrawn."
    assert team["record"]["consent"] == consent
    plan = reference_record()["safety_plans"]
    plan[0]["review_by"] = "2026-12-01T10:00:00Z"
    mixed = {"consent": consent, "safety_plans": plan}
    api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={"note": "Review brought forward.", "changes": mixed},
    )
    police = api.get(f"/handovers/{hid}", as_="police_officer", headers=PURPOSE).get_json()
    assert police["versions"][2]["sections"] == ["safety_plans"]
    assert police["versions"][2]["note"] == "Review brought forward."
