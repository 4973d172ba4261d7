"""Linked handovers: blind-index digests, exact comparison, reasons, and who may know of what."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from handover import crypto
from handover.audit import AuditEvent
from handover.db import engine, transaction
from handover.records import linking
from handover.records.models import LinkDigest, LinkMatch
from tests.conftest import Api, reference_record

PURPOSE = {"X-Access-Purpose": "s47 joint investigation WS/26/118734"}


def create(api: Api, record: dict[str, Any], *, as_: str = "edt_worker") -> str:
    response = api.post("/handovers", as_=as_, json_body=record)
    assert response.status_code == 201, response.get_json()
    hid: str = response.get_json()["id"]
    return hid


def submitted(api: Api, record: dict[str, Any]) -> str:
    hid = create(api, record)
    response = api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    assert response.status_code == 200, response.get_json()
    return hid


def linked(api: Api, hid: str, *, as_: str, **kw: Any) -> list[dict[str, Any]]:
    response = api.get(f"/handovers/{hid}/linked", as_=as_, **kw)
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["linked"]
    return found


def reasons_by_reference(links: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {link["reference"]: link["reasons"] for link in links}


def reference_of(api: Api, hid: str) -> str:
    ref: str = api.get(f"/handovers/{hid}", as_="edt_worker").get_json()["reference"]
    return ref


def unrelated(record: dict[str, Any], *, suffix: str) -> dict[str, Any]:
    """The reference record with every identifier changed: links to nothing of the original."""
    other = copy.deepcopy(record)
    nhs = iter(["9434765870", "9434765889", "9434765897", "9434765900", "9434765919", "4010232137"])
    for person in other["children"] + other["household"]:
        person["last_name"] = f"Other{suffix}"
        person.get("address", {})["postcode"] = "ZZ9 9ZZ"
    for child in other["children"]:
        child["nhs_number"] = next(nhs)
        child.pop("la_person_id", None)
    other["police"]["crime_reference"] = f"XX/99/{suffix}"
    return other


# Normalisers: hypothesis properties.

LATIN = st.characters(min_codepoint=0x41, max_codepoint=0x17F, categories=("Lu", "Ll"))
SEPARATORS = st.sampled_from([" ", "  ", "-", "'", "\u2019", "\u2010", "\t"])
ACCENTS = {"a": "áàâäãå", "e": "éèêë", "i": "íìîï", "o": "óòôöõ", "u": "úùûü", "c": "ç", "n": "ñ"}


@given(st.text())
def test_name_normaliser_is_idempotent(text: str) -> None:
    once = linking.normalise_name(text)
    assert linking.normalise_name(once) == once


@given(st.text())
def test_code_normaliser_is_idempotent(text: str) -> None:
    once = linking.normalise_code(text)
    assert linking.normalise_code(once) == once
    assert once == once.upper() and " " not in once


@given(st.text(alphabet=LATIN, min_size=1))
def test_name_normaliser_ignores_case(name: str) -> None:
    expected = linking.normalise_name(name)
    assert linking.normalise_name(name.upper()) == expected
    assert linking.normalise_name(name.lower()) == expected
    assert linking.normalise_name(name.swapcase()) == expected


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1), st.data())
def test_name_normaliser_ignores_accents(name: str, data: st.DataObject) -> None:
    accented = "".join(
        data.draw(st.sampled_from([ch, *ACCENTS[ch]])) if ch in ACCENTS else ch for ch in name
    )
    assert linking.normalise_name(accented) == linking.normalise_name(name) == name


@given(st.lists(st.text(alphabet=LATIN, min_size=1), min_size=1, max_size=4), st.data())
def test_name_normaliser_ignores_spaces_hyphens_and_apostrophes(
    parts: list[str], data: st.DataObject
) -> None:
    joined = "".join(data.draw(SEPARATORS) + part for part in parts) + data.draw(SEPARATORS)
    assert linking.normalise_name(joined) == linking.normalise_name("".join(parts))


@given(st.lists(st.sampled_from("0123456789"), min_size=10, max_size=10), st.data())
def test_nhs_number_normaliser_keeps_digits_only(digits: list[str], data: st.DataObject) -> None:
    spaced = "".join(d + data.draw(st.sampled_from(["", " ", "-"])) for d in digits)
    assert linking.normalise_nhs_number(spaced) == "".join(digits)
    assert linking.normalise_nhs_number(linking.normalise_nhs_number(spaced)) == "".join(digits)


@pytest.mark.parametrize(
    ("normalise", "a", "b"),
    [
        (linking.normalise_name, "Jaylen Marsh", "JAYLEN  MARSH"),
        (linking.normalise_name, "Zoë", "Zoe"),
        (linking.normalise_name, "O'Neil", "ONeil"),
        (linking.normalise_name, "O\u2019Neil", "o neil"),
        (linking.normalise_name, "Marsh-Cole", "Marsh Cole"),
        (linking.normalise_crime_reference, "WS/26/118734", "ws 26-118734"),
        (linking.normalise_postcode, "NV4 7QT", "nv47qt"),
        (linking.normalise_nhs_number, "999 590 8301", "9995908301"),
    ],
)
def test_variants_normalise_alike(normalise: Any, a: str, b: str) -> None:
    assert normalise(a) == normalise(b) != ""


@pytest.mark.parametrize(
    ("normalise", "a", "b"),
    [
        (linking.normalise_name, "Marsh", "Marsha"),
        (linking.normalise_name, "Zoe", "Zoey"),
        (linking.normalise_crime_reference, "WS/26/118734", "WS/26/118735"),
    ],
)
def test_different_values_stay_different(normalise: Any, a: str, b: str) -> None:
    assert normalise(a) != normalise(b)


def test_values_of_a_record() -> None:
    values = linking.link_values(reference_record(), local_authority="northvale")
    assert "9995908301" in values[linking.CHILD_NHS]
    assert "marsh|jaylen|2026-07-24" in values[linking.CHILD_NAME_DOB]
    assert "marshcole|ava|2024-02-11" in values[linking.CHILD_NAME_DOB]
    assert "northvale|NV4410982" in values[linking.PERSON_ID]
    assert "cole|dean|1993-04-17" in values[linking.HOUSEHOLD_NAME_DOB]
    assert values[linking.CRIME_REFERENCE] == {"WS26118734"}
    assert {"marsh|NV47QT", "cole|SM12XY", "marsh|NV21AB"} <= values[linking.FAMILY]
    assert linking.link_values({"children": "x", "police": None}, local_authority=None) == {
        kind: set() for kind in linking.REASONS
    }


# Linking through the API.


def test_a_child_filed_again_with_another_spelling_links(api: Api) -> None:
    first = submitted(api, reference_record())
    again = {
        "local_authority": "northvale",
        "children": [
            {"first_name": "JAYLEN ", "last_name": "  MARSH", "date_of_birth": "2026-07-24"},
            {"first_name": "Ava", "last_name": "Marsh Cole", "date_of_birth": "2024-02-11"},
            {"first_name": "Zoë", "last_name": "O'Neil", "date_of_birth": "2019-05-05"},
        ],
    }
    second = create(api, again)
    third = create(
        api,
        {"children": [{"first_name": "Zoe", "last_name": "ONeil", "date_of_birth": "2019-05-05"}]},
    )
    links = reasons_by_reference(linked(api, second, as_="edt_worker"))
    assert links == {
        reference_of(api, first): ["same child: name and date of birth"],
        reference_of(api, third): ["same child: name and date of birth"],
    }


KIND_CHANGES = {
    "same child: NHS number": {"children": [{"ref": "c9", "nhs_number": "9995908301"}]},
    "same child: name and date of birth": {
        "children": [{"first_name": "Tianna", "last_name": "Marsh", "date_of_birth": "2010-03-02"}]
    },
    "same person in the in-hours system": {
        "local_authority": "northvale",
        "children": [{"first_name": "T", "la_person_id": "nv 1022417"}],
    },
    "same household member: name and date of birth": {
        "household": [{"first_name": "Dean", "last_name": "COLE", "date_of_birth": "1993-04-17"}]
    },
    "same crime reference": {"police": {"crime_reference": "ws-26-118734"}},
    "same family: surname and postcode": {
        "household": [
            {"first_name": "Ray", "last_name": "Marsh", "address": {"postcode": "nv47qt"}}
        ]
    },
}


@pytest.mark.parametrize("reason", KIND_CHANGES)
def test_each_kind_of_identifier_links_with_its_reason(api: Api, reason: str) -> None:
    original = create(api, reference_record())
    other = create(api, KIND_CHANGES[reason])
    assert reasons_by_reference(linked(api, other, as_="edt_worker")) == {
        reference_of(api, original): [reason]
    }
    back = reasons_by_reference(linked(api, original, as_="edt_worker"))
    assert back == {reference_of(api, other): [reason]}


def test_in_hours_ids_of_different_las_do_not_link(api: Api) -> None:
    create(api, reference_record())  # NV-1022417 in Northvale's system
    other = create(
        api, {"local_authority": "southmoor", "children": [{"la_person_id": "NV-1022417"}]}
    )
    assert linked(api, other, as_="edt_worker") == []


def test_the_same_record_lists_every_reason_strongest_first(api: Api) -> None:
    first = create(api, reference_record())
    second = create(api, reference_record())
    assert reasons_by_reference(linked(api, second, as_="edt_worker")) == {
        reference_of(api, first): list(linking.REASONS.values())
    }


def test_edits_and_addenda_rewrite_the_index(app: Flask, api: Api) -> None:
    original = submitted(api, reference_record())
    draft = create(api, {"children": [{"nhs_number": "9995908301"}]})
    assert len(linked(api, draft, as_="edt_worker")) == 1
    patch = {"children": [{"nhs_number": "9434765919"}]}
    assert api.patch(f"/handovers/{draft}", as_="edt_worker", json_body=patch).status_code == 200
    assert linked(api, draft, as_="edt_worker") == []
    assert [link["reference"] for link in linked(api, original, as_="edt_worker")] == []
    children = reference_record()["children"]
    children[0]["nhs_number"] = "9434765919"
    addendum = api.post(
        f"/handovers/{original}/addenda",
        as_="edt_worker",
        json_body={"note": "NHS number corrected by the GP.", "changes": {"children": children}},
    )
    assert addendum.status_code == 201, addendum.get_json()
    assert reasons_by_reference(linked(api, draft, as_="edt_worker")) == {
        reference_of(api, original): ["same child: NHS number"]
    }
    with app.app_context(), transaction() as session:
        kinds = session.scalars(
            sa.select(LinkDigest.kind).where(LinkDigest.handover_id == draft)
        ).all()
    assert kinds == [linking.CHILD_NHS]


def test_the_index_holds_keyed_digests_only(app: Flask, api: Api, keyring: crypto.Keyring) -> None:
    hid = create(api, reference_record())
    with app.app_context(), transaction() as session:
        rows = session.scalars(sa.select(LinkDigest).where(LinkDigest.handover_id == hid)).all()
    values = linking.link_values(reference_record(), local_authority="northvale")
    expected = {
        (kind, linking.digest(keyring, kind, value))
        for kind, found in values.items()
        for value in found
    }
    assert {(row.kind, row.digest) for row in rows} == expected
    assert all(len(row.digest) == 2 * linking.DIGEST_BYTES for row in rows)
    plain = {value for found in values.values() for value in found}
    assert not any(value in row.digest for row in rows for value in plain)
    other_key = crypto.generate_keyring()
    assert linking.digest(other_key, linking.CHILD_NHS, "9995908301") not in {
        row.digest for row in rows
    }


def test_lookup_is_indexed_by_kind_and_digest(app: Flask) -> None:
    with app.app_context():
        indexes = sa.inspect(engine()).get_indexes("link_digest")
    assert ["kind", "digest"] in [index["column_names"] for index in indexes]


# Exact comparison: a digest collision never makes a link.


def test_a_planted_colliding_digest_is_checked_and_dropped(
    app: Flask, api: Api, keyring: crypto.Keyring
) -> None:
    original = create(api, reference_record())
    stranger = create(api, unrelated(reference_record(), suffix="7"))
    nhs_digest = linking.digest(keyring, linking.CHILD_NHS, "9995908301")
    with app.app_context(), transaction() as session:
        session.add(LinkDigest(handover_id=stranger, kind=linking.CHILD_NHS, digest=nhs_digest))
    with app.app_context(), transaction() as session:  # the digest makes it a candidate...
        candidates = session.scalars(
            sa.select(LinkDigest.handover_id).where(LinkDigest.digest == nhs_digest)
        ).all()
    assert sorted(candidates) == sorted([original, stranger])
    assert linked(api, original, as_="edt_worker") == []  # ...the decrypted value does not
    assert linked(api, stranger, as_="edt_worker") == []


def _colliding_names(keyring: crypto.Keyring) -> tuple[str, str]:
    """Two different surnames whose one-byte child name-and-birth digests are equal."""
    seen: dict[str, str] = {}
    for n in range(10_000):
        surname = f"Surname{n}"
        value = f"{linking.normalise_name(surname)}|ava|2020-01-01"
        short = crypto.blind_index(keyring, linking.CHILD_NAME_DOB, value, length=1)
        if short in seen:
            return seen[short], surname
        seen[short] = surname
    raise AssertionError("no collision found")


def test_a_real_collision_of_short_digests_makes_no_link(
    api: Api, keyring: crypto.Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linking, "DIGEST_BYTES", 1)
    first, second = _colliding_names(keyring)
    child = {"first_name": "Ava", "date_of_birth": "2020-01-01"}
    a = create(api, {"children": [{**child, "last_name": first}]})
    b = create(api, {"children": [{**child, "last_name": second}]})
    c = create(api, {"children": [{**child, "last_name": first.upper()}]})
    assert reasons_by_reference(linked(api, a, as_="edt_worker")) == {
        reference_of(api, c): ["same child: name and date of birth"]
    }
    assert linked(api, b, as_="edt_worker") == []


# Who may know of which link.


def _southmoor_family() -> dict[str, Any]:
    """The same family, filed in Southmoor (they moved): the same children, another LA."""
    record = reference_record()
    record["local_authority"], record["allocated_team"] = "southmoor", "southmoor-fst"
    record["police"]["team_code"] = None
    record["police"]["crime_reference"] = "SM/26/5550"
    return record


def test_links_into_another_la_are_metadata_only(api: Api) -> None:
    northvale = submitted(api, reference_record())
    southmoor = submitted(api, _southmoor_family())
    create(api, _southmoor_family())  # a draft: nobody outside the EDT team knows of it
    (link,) = linked(api, northvale, as_="social_worker")
    assert link["access"] == "metadata"
    assert set(link) == {
        "access",
        "reasons",
        "reference",
        "local_authority",
        "team",
        "status",
        "created_at",
        "updated_at",
        "submitted_at",
        "due_at",
        "delivered_at",
        "acknowledged_at",
    }
    assert link["reference"] == reference_of(api, southmoor)
    assert (link["local_authority"], link["team"], link["status"]) == (
        "southmoor",
        "southmoor-fst",
        "scheduled",
    )
    assert link["reasons"][0] == "same child: NHS number"
    assert api.get(f"/handovers/{southmoor}", as_="social_worker").status_code == 404
    (back,) = linked(api, southmoor, as_="southmoor_worker")
    assert back["access"] == "metadata" and "id" not in back
    everything = linked(api, northvale, as_="edt_worker")
    assert [link["access"] for link in everything] == ["full", "full"]
    assert {link["id"] for link in everything} >= {southmoor}


def test_links_within_the_la_are_full_and_openable(api: Api) -> None:
    first = submitted(api, reference_record())
    second = submitted(api, reference_record())
    (link,) = linked(api, second, as_="social_worker")
    assert link["access"] == "full" and link["id"] == first
    assert api.get(f"/handovers/{link['id']}", as_="social_worker").status_code == 200


def test_police_see_links_only_among_what_they_may_read(api: Api) -> None:
    named = submitted(api, reference_record())
    same_crime = reference_record()
    same_crime["police"]["team_code"] = None
    same_crime_id = submitted(api, same_crime)
    same_child_only = submitted(api, _southmoor_family())
    for_police = linked(api, named, as_="police_officer", headers=PURPOSE)
    assert [(link["id"], link["access"]) for link in for_police] == [(same_crime_id, "full")]
    for_team = {link["reference"] for link in linked(api, named, as_="edt_worker")}
    assert reference_of(api, same_child_only) in for_team


def test_police_state_a_purpose_for_links(app: Flask, api: Api) -> None:
    hid = submitted(api, reference_record())
    refused = api.get(f"/handovers/{hid}/linked", as_="police_officer")
    assert refused.status_code == 400
    assert "X-Access-Purpose" in refused.get_json()["error"]["fields"]
    assert linked(api, hid, as_="police_officer", headers=PURPOSE) == []
    with app.app_context(), transaction() as session:
        rows = session.scalars(
            sa.select(AuditEvent.details).where(
                AuditEvent.action == "handover.linked", AuditEvent.object_id == hid
            )
        ).all()
    assert len(rows) == 1 and PURPOSE["X-Access-Purpose"] in rows[0]


def test_invisible_records_have_no_links_panel(api: Api) -> None:
    draft = create(api, reference_record())
    submitted(api, reference_record())
    for role in ("social_worker", "southmoor_worker", "admin", "auditor"):
        assert api.get(f"/handovers/{draft}/linked", as_=role).status_code == 404
    assert api.get(f"/handovers/{draft}/linked", as_="police_officer").status_code == 404


def test_crime_reference_matches_are_grouped_exactly(app: Flask, api: Api) -> None:
    a = create(api, reference_record())
    b = create(api, KIND_CHANGES["same crime reference"])
    c = create(api, {"police": {"crime_reference": "WS/26/999999"}})
    with app.app_context(), transaction() as session:
        groups = dict(
            session.execute(
                sa.select(LinkDigest.handover_id, LinkDigest.match_id).where(
                    LinkDigest.kind == linking.CRIME_REFERENCE
                )
            ).all()
        )
        assert session.scalar(sa.select(sa.func.count()).select_from(LinkMatch)) == 2
    assert groups[a] == groups[b] != groups[c]
