"""Encryption at rest, seen from the database: tampering, moved ciphertext, keys, and rewrap."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from handover import crypto
from handover.db import transaction
from handover.records import service, storage
from handover.records.models import Handover, HandoverSection
from tests.conftest import Api, reference_record


@pytest.fixture
def two_records(api: Api) -> tuple[str, str]:
    first = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()["id"]
    second = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()["id"]
    return first, second


def read(app: Flask, handover_id: str) -> dict[str, Any]:
    with app.app_context(), transaction() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None
        return service.read_record(session, handover, "edt")


def section(app: Flask, handover_id: str, name: str) -> bytes:
    with app.app_context(), transaction() as session:
        row = session.get(HandoverSection, (handover_id, 1, name))
        assert row is not None
        return row.ciphertext


def put_section(app: Flask, handover_id: str, name: str, ciphertext: bytes) -> None:
    with app.app_context(), transaction() as session:
        session.execute(
            sa.update(HandoverSection)
            .where(
                HandoverSection.handover_id == handover_id,
                HandoverSection.section == name,
            )
            .values(ciphertext=ciphertext)
        )


def test_a_flipped_byte_in_a_stored_section_is_an_error(
    app: Flask, two_records: tuple[str, str]
) -> None:
    hid = two_records[0]
    original = section(app, hid, "children")
    for position in (0, 1, 13, len(original) // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        put_section(app, hid, "children", bytes(tampered))
        with pytest.raises(crypto.CryptoError):
            read(app, hid)
    put_section(app, hid, "children", original)
    assert read(app, hid)["children"] == reference_record()["children"]


def test_ciphertext_moved_to_another_record_or_section_does_not_decrypt(
    app: Flask, two_records: tuple[str, str]
) -> None:
    first, second = two_records
    put_section(app, second, "summary", section(app, first, "summary"))
    with pytest.raises(crypto.CryptoError):
        read(app, second)
    put_section(app, first, "summary", section(app, first, "contingency"))
    with pytest.raises(crypto.CryptoError):
        read(app, first)


def test_ciphertext_moved_to_another_version_does_not_decrypt(app: Flask, api: Api) -> None:
    hid = api.post("/handovers", as_="edt_worker", json_body=reference_record()).get_json()["id"]
    api.post(f"/handovers/{hid}/submit", as_="edt_worker")
    api.post(
        f"/handovers/{hid}/addenda",
        as_="edt_worker",
        json_body={"note": "n", "changes": {"contingency": "Call police."}},
    )
    with app.app_context(), transaction() as session:
        session.execute(
            sa.update(HandoverSection)
            .where(
                HandoverSection.handover_id == hid,
                HandoverSection.section == "contingency",
                HandoverSection.version == 2,
            )
            .values(ciphertext=section(app, hid, "contingency"))
        )
    with pytest.raises(crypto.CryptoError):
        read(app, hid)


def test_a_tampered_record_reads_as_a_clean_500(
    app: Flask, api: Api, two_records: tuple[str, str]
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    hid = two_records[0]
    put_section(app, hid, "summary", section(app, two_records[1], "summary"))
    response = api.get(f"/handovers/{hid}", as_="edt_worker")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "record_unreadable"
    assert b"Marsh" not in response.get_data()


def test_unknown_key_id_is_an_error(
    app: Flask, two_records: tuple[str, str], keyring: crypto.Keyring
) -> None:
    rotated, _ = keyring.with_new_kek()
    with app.app_context():
        crypto.set_keyring(app, rotated)
        with transaction() as session:
            storage.rewrap_batch(session, keyring=rotated, batch_size=100)
        crypto.set_keyring(app, keyring)  # the old keyring does not know the new KEK
    with pytest.raises(crypto.UnknownKeyError):
        read(app, two_records[0])


def test_shredding_the_data_key_makes_the_record_unreadable(
    app: Flask, two_records: tuple[str, str]
) -> None:
    hid = two_records[0]
    with app.app_context(), transaction() as session:
        session.execute(
            sa.update(Handover).where(Handover.id == hid).values(wrapped_dek=None, kek_id=None)
        )
    with pytest.raises(crypto.CryptoError):
        read(app, hid)
    assert read(app, two_records[1]) == reference_record()


def test_rewrap_under_concurrent_edits_loses_nothing_and_old_kek_can_go(
    app: Flask, api: Api, keyring: crypto.Keyring
) -> None:
    ids = [
        api.post("/handovers", as_="edt_worker", json_body={"summary": f"draft {i}"}).get_json()[
            "id"
        ]
        for i in range(30)
    ]
    rotated, new_kek = keyring.with_new_kek()
    crypto.set_keyring(app, rotated)
    errors: list[BaseException] = []

    def edit() -> None:
        try:
            client = app.test_client()
            for i, hid in enumerate(ids):
                response = client.patch(
                    f"/api/v1/handovers/{hid}",
                    json={"summary": f"edited {i}"},
                    headers={"Authorization": f"Bearer {api.tokens['edt_worker']}"},
                )
                assert response.status_code == 200
        except BaseException as error:  # noqa: BLE001 — reported to the main thread
            errors.append(error)

    editor = threading.Thread(target=edit)
    editor.start()
    with app.app_context():
        while True:
            with transaction() as session:
                if storage.rewrap_batch(session, keyring=rotated, batch_size=3) == 0:
                    break
    editor.join()
    assert not errors
    retired = rotated.without_kek(keyring.active_kek_id)
    crypto.set_keyring(app, retired)
    with app.app_context(), transaction() as session:
        assert storage.key_status(session) == {new_kek: 30}
    for i, hid in enumerate(ids):
        assert read(app, hid)["summary"] == f"edited {i}"
