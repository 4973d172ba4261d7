"""Envelope encryption, keyring handling, blind indexes, audit MACs and signatures."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover import crypto
from handover.crypto import CryptoError, DecryptionError, Keyring, UnknownKeyError

PLACE: dict[str, Any] = {
    "table": "record_sections",
    "record_id": "7f1c9a52-0000-4000-8000-000000000001",
    "version": 3,
    "section": "concerns",
}
PLAINTEXT = b"Child seen at A&E 02:10; mother present; police informed."
MASKS = [0x01, 0x80, 0xFF]


@pytest.fixture
def keyring() -> Keyring:
    """A fresh keyring."""
    return crypto.generate_keyring()


@pytest.fixture
def dek() -> bytes:
    """A fresh data key."""
    return crypto.new_dek()


@pytest.fixture
def blob(dek: bytes) -> bytes:
    """PLAINTEXT encrypted at PLACE."""
    return crypto.encrypt(dek, PLAINTEXT, **PLACE)


@pytest.fixture
def wrapped(keyring: Keyring, dek: bytes) -> bytes:
    """`dek` wrapped for PLACE's record."""
    return crypto.wrap_dek(keyring, dek, record_id=PLACE["record_id"])


@pytest.fixture(autouse=True)
def no_keyring_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's HANDOVER_KEYRING out of the tests."""
    monkeypatch.delenv("HANDOVER_KEYRING", raising=False)


def flip(data: bytes, position: int, mask: int) -> bytes:
    """Return `data` with one byte XOR-ed by `mask`."""
    changed = bytearray(data)
    changed[position] ^= mask
    return bytes(changed)


def secret_forms(keyring: Keyring) -> Iterator[str]:
    """Every textual form in which a key of `keyring` could leak."""
    keys = [*keyring.keks.values(), keyring.index_key, keyring.audit_key, keyring.signing_key]
    for key in keys:
        yield base64.b64encode(key).decode()
        yield base64.urlsafe_b64encode(key).decode()
        yield base64.b64encode(key).decode().rstrip("=")[:16]
        yield key.hex()
        yield key.hex().upper()
        yield repr(key)


def assert_no_secrets(text: str, keyring: Keyring) -> None:
    """Fail if `text` contains key material of `keyring` or the test plaintext."""
    for form in secret_forms(keyring):
        assert form not in text
    assert PLAINTEXT.decode() not in text
    assert "mother present" not in text


def test_round_trip(keyring: Keyring, dek: bytes) -> None:
    """A section encrypted with a wrapped DEK reads back after unwrapping."""
    blob = crypto.encrypt(dek, PLAINTEXT, **PLACE)
    wrapped = crypto.wrap_dek(keyring, dek, record_id=PLACE["record_id"])
    unwrapped = crypto.unwrap_dek(keyring, wrapped, record_id=PLACE["record_id"])
    assert crypto.decrypt(unwrapped, blob, **PLACE) == PLAINTEXT
    assert PLAINTEXT not in blob


def test_stored_forms(keyring: Keyring, dek: bytes, blob: bytes, wrapped: bytes) -> None:
    """Blobs and wrapped DEKs have the documented layout."""
    assert blob[0] == 1 and len(blob) == 1 + 12 + len(PLAINTEXT) + 16
    kek_id = keyring.active_kek_id.encode()
    assert wrapped[:2] == bytes([1, len(kek_id)]) and wrapped[2 : 2 + len(kek_id)] == kek_id
    assert len(wrapped) == 2 + len(kek_id) + 12 + 32 + 16
    assert crypto.wrapped_kek_id(wrapped) == keyring.active_kek_id


def test_fresh_nonce_every_time(dek: bytes, keyring: Keyring) -> None:
    """Encrypting the same thing twice gives different ciphertexts."""
    assert crypto.encrypt(dek, PLAINTEXT, **PLACE) != crypto.encrypt(dek, PLAINTEXT, **PLACE)
    record_id = PLACE["record_id"]
    assert crypto.wrap_dek(keyring, dek, record_id=record_id) != crypto.wrap_dek(
        keyring, dek, record_id=record_id
    )


Place = tuple[str, str, int, str]
places = st.tuples(
    st.text(max_size=6), st.text(max_size=6), st.integers(0, 2**63 - 1), st.text(max_size=6)
)


@given(plaintext=st.binary(max_size=300), place=places, other=places)
def test_any_content_decrypts_only_in_its_place(
    plaintext: bytes, place: Place, other: Place
) -> None:
    """Any bytes round-trip at any place, and at no other place."""
    dek = crypto.new_dek()
    table, record_id, version, section = place
    blob = crypto.encrypt(
        dek, plaintext, table=table, record_id=record_id, version=version, section=section
    )
    assert (
        crypto.decrypt(
            dek, blob, table=table, record_id=record_id, version=version, section=section
        )
        == plaintext
    )
    if other != place:
        table, record_id, version, section = other
        with pytest.raises(DecryptionError):
            crypto.decrypt(
                dek, blob, table=table, record_id=record_id, version=version, section=section
            )


@pytest.mark.parametrize("mask", MASKS)
def test_any_flipped_byte_of_a_blob_fails(dek: bytes, blob: bytes, mask: int) -> None:
    """No single byte of a section blob can change without detection."""
    for position in range(len(blob)):
        with pytest.raises(DecryptionError):
            crypto.decrypt(dek, flip(blob, position, mask), **PLACE)


@pytest.mark.parametrize("mask", MASKS)
def test_any_flipped_byte_of_a_wrapped_dek_fails(
    keyring: Keyring, wrapped: bytes, mask: int
) -> None:
    """No single byte of a wrapped DEK can change without detection.

    A flip inside the KEK id may turn it into another well-formed id that is not in the
    keyring; that is reported as UnknownKeyError. Every other flip is a DecryptionError.
    """
    id_bytes = range(2, 2 + len(keyring.active_kek_id))
    for position in range(len(wrapped)):
        expected = (DecryptionError, UnknownKeyError) if position in id_bytes else DecryptionError
        with pytest.raises(expected):
            crypto.unwrap_dek(keyring, flip(wrapped, position, mask), record_id=PLACE["record_id"])


@pytest.mark.parametrize("cut", [0, 1, 5, 28])
def test_truncated_or_padded_blobs_fail(dek: bytes, blob: bytes, cut: int) -> None:
    """Short or over-long stored forms are rejected, not half-read."""
    with pytest.raises(DecryptionError):
        crypto.decrypt(dek, blob[:cut], **PLACE)
    with pytest.raises(DecryptionError):
        crypto.decrypt(dek, blob + b"\0", **PLACE)


@pytest.mark.parametrize("cut", [0, 1, 2, 10, -1])
def test_truncated_or_padded_wrapped_deks_fail(keyring: Keyring, wrapped: bytes, cut: int) -> None:
    """Short or over-long wrapped DEKs are rejected."""
    record_id = PLACE["record_id"]
    for bad in (wrapped[:cut], wrapped + b"\0"):
        with pytest.raises(DecryptionError):
            crypto.unwrap_dek(keyring, bad, record_id=record_id)
        with pytest.raises(DecryptionError):
            crypto.wrapped_kek_id(bad)


@pytest.mark.parametrize(
    "moved",
    [
        {"table": "messages"},
        {"record_id": "7f1c9a52-0000-4000-8000-000000000002"},
        {"version": 4},
        {"version": 2},
        {"section": "actions"},
    ],
)
def test_blob_moved_to_another_place_fails(dek: bytes, blob: bytes, moved: dict[str, Any]) -> None:
    """A ciphertext copied to another row, version or section does not decrypt."""
    with pytest.raises(DecryptionError):
        crypto.decrypt(dek, blob, **{**PLACE, **moved})


def test_place_encoding_is_unambiguous(dek: bytes) -> None:
    """Moving characters between the parts of a place changes the place."""
    blob = crypto.encrypt(dek, PLAINTEXT, table="ab", record_id="c", version=1, section="d")
    with pytest.raises(DecryptionError):
        crypto.decrypt(dek, blob, table="a", record_id="bc", version=1, section="d")
    with pytest.raises(DecryptionError):
        crypto.decrypt(dek, blob, table="ab", record_id="", version=1, section="cd")


def test_blob_under_another_dek_fails(blob: bytes) -> None:
    """Another record's key cannot read the blob."""
    with pytest.raises(DecryptionError):
        crypto.decrypt(crypto.new_dek(), blob, **PLACE)


def test_wrapped_dek_for_another_record_fails(keyring: Keyring, wrapped: bytes) -> None:
    """A wrapped DEK copied to another record does not unwrap."""
    with pytest.raises(DecryptionError):
        crypto.unwrap_dek(keyring, wrapped, record_id="7f1c9a52-0000-4000-8000-000000000002")


def test_unknown_kek_id(keyring: Keyring, wrapped: bytes) -> None:
    """A DEK wrapped by a KEK this keyring does not hold is an UnknownKeyError."""
    with pytest.raises(UnknownKeyError, match=re.escape(keyring.active_kek_id)):
        crypto.unwrap_dek(crypto.generate_keyring(), wrapped, record_id=PLACE["record_id"])


def test_rotation_rewrap_and_retire(keyring: Keyring) -> None:
    """Rotate, rewrap every DEK, retire the old KEK: everything still decrypts."""
    records = {f"record-{n}": crypto.new_dek() for n in range(20)}
    wrapped = {rid: crypto.wrap_dek(keyring, dek, record_id=rid) for rid, dek in records.items()}
    blobs = {
        rid: crypto.encrypt(dek, PLAINTEXT, **{**PLACE, "record_id": rid})
        for rid, dek in records.items()
    }
    old_id = keyring.active_kek_id

    rotated, new_id = keyring.with_new_kek()
    assert rotated.active_kek_id == new_id != old_id and set(rotated.keks) == {old_id, new_id}
    assert keyring.active_kek_id == old_id  # the original keyring is unchanged
    with pytest.raises(UnknownKeyError):
        crypto.unwrap_dek(rotated.without_kek(old_id), wrapped["record-0"], record_id="record-0")

    rewrapped = {rid: crypto.rewrap_dek(rotated, w, record_id=rid) for rid, w in wrapped.items()}
    assert {crypto.wrapped_kek_id(w) for w in rewrapped.values()} == {new_id}
    retired = rotated.without_kek(old_id)
    assert set(retired.keks) == {new_id}
    for rid, w in rewrapped.items():
        dek = crypto.unwrap_dek(retired, w, record_id=rid)
        assert crypto.decrypt(dek, blobs[rid], **{**PLACE, "record_id": rid}) == PLAINTEXT


def test_rewrap_checks_the_record(keyring: Keyring, wrapped: bytes) -> None:
    """Rewrapping authenticates the old wrapping, including its record binding."""
    rotated, _ = keyring.with_new_kek()
    with pytest.raises(DecryptionError):
        crypto.rewrap_dek(rotated, wrapped, record_id="another-record")


def test_new_kek_ids_are_dated_and_unique(keyring: Keyring) -> None:
    """KEK ids look like kek-YYYYMMDD-xxxxxx and never repeat."""
    ids = {keyring.active_kek_id}
    for _ in range(30):
        keyring, kek_id = keyring.with_new_kek()
        assert re.fullmatch(r"kek-\d{8}-[0-9a-f]{6}", kek_id)
        ids.add(kek_id)
    assert len(ids) == 31 == len(keyring.keks)


def test_without_kek_refuses_active_and_unknown(keyring: Keyring) -> None:
    """The active KEK cannot be retired, nor one that is not there."""
    with pytest.raises(CryptoError, match="active"):
        keyring.without_kek(keyring.active_kek_id)
    with pytest.raises(UnknownKeyError):
        keyring.without_kek("kek-19990101-000000")


def test_json_round_trip(keyring: Keyring) -> None:
    """to_json and from_json are inverse, in the documented shape."""
    data = json.loads(keyring.to_json())
    assert set(data) == {"version", "active_kek", "keks", "index_key", "audit_key", "signing_key"}
    assert data["version"] == 1 and data["active_kek"] == keyring.active_kek_id
    assert Keyring.from_json(keyring.to_json()) == keyring


def _short_key() -> str:
    """Base64 of 31 bytes: well-formed but the wrong length."""
    return base64.b64encode(b"S" * 31).decode()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("index_key"), "index_key"),
        (lambda d: d.update(index_key=_short_key()), "index_key"),
        (lambda d: d.update(audit_key="not base64!!"), "audit_key"),
        (lambda d: d.update(signing_key=12345), "signing_key"),
        (lambda d: d.update(active_kek="kek-19990101-000000"), "active_kek"),
        (lambda d: d.update(keks={}), "keks"),
        (lambda d: d.update(keks=[]), "keks"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["keks"].update({"bad id/../": base64.b64encode(bytes(32)).decode()}), "keks"),
        (lambda d: d["keks"].update({d["active_kek"]: _short_key()}), "keks["),
    ],
)
def test_from_json_names_the_bad_field(
    keyring: Keyring, mutate: Callable[[dict[str, Any]], object], field: str
) -> None:
    """Each invalid field is named in the error, but its value is not shown."""
    data = json.loads(keyring.to_json())
    mutate(data)
    with pytest.raises(CryptoError) as caught:
        Keyring.from_json(json.dumps(data))
    assert field in str(caught.value)
    assert _short_key() not in str(caught.value) and "not base64" not in str(caught.value)
    assert_no_secrets(str(caught.value), keyring)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "null"])
def test_from_json_rejects_non_objects(text: str) -> None:
    """Garbage is a CryptoError, not a crash."""
    with pytest.raises(CryptoError, match="invalid keyring"):
        Keyring.from_json(text)


def test_keyring_repr_shows_ids_only(keyring: Keyring) -> None:
    """repr and str show KEK ids and the active id, never key bytes."""
    rotated, new_id = keyring.with_new_kek()
    for text in (repr(rotated), str(rotated), f"{rotated}", repr([rotated])):
        assert new_id in text and keyring.active_kek_id in text
        assert_no_secrets(text, rotated)


def test_exceptions_never_show_keys_or_plaintext(
    keyring: Keyring, dek: bytes, blob: bytes, wrapped: bytes, tmp_path: Path
) -> None:
    """No error the module raises carries key material or plaintext in its text."""
    rid = PLACE["record_id"]
    path = tmp_path / "keyring.json"
    path.write_text(keyring.to_json())
    path.chmod(0o644)
    leaky_json = keyring.to_json().replace(keyring.active_kek_id, "kek-19990101-000000", 1)
    failures: list[Callable[[], object]] = [
        lambda: crypto.decrypt(dek, flip(blob, 20, 1), **PLACE),
        lambda: crypto.decrypt(dek, blob, **{**PLACE, "section": "x"}),
        lambda: crypto.unwrap_dek(keyring, wrapped, record_id="x"),
        lambda: crypto.unwrap_dek(crypto.generate_keyring(), wrapped, record_id=rid),
        lambda: crypto.wrapped_kek_id(wrapped[:-1]),
        lambda: keyring.without_kek(keyring.active_kek_id),
        lambda: crypto.load_keyring(env_value=None, path=path),
        lambda: crypto.load_keyring(env_value=leaky_json, path=path),
        lambda: Keyring.from_json(keyring.to_json()[:-5]),
    ]
    for failure in failures:
        with pytest.raises(CryptoError) as caught:
            failure()
        for exc in (caught.value, caught.value.__cause__, caught.value.__context__):
            assert_no_secrets(f"{exc!s} {exc!r}", keyring)


def test_load_refuses_a_file_others_can_read(keyring: Keyring, tmp_path: Path) -> None:
    """A keyring file readable by group or others is refused, saying why."""
    path = tmp_path / "keyring.json"
    crypto.save_keyring(keyring, path)
    for mode in (0o644, 0o640, 0o604, 0o620):
        path.chmod(mode)
        with pytest.raises(CryptoError, match="group or others"):
            crypto.load_keyring(env_value=None, path=path)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_accepts_an_owner_only_file(keyring: Keyring, tmp_path: Path, mode: int) -> None:
    """A keyring file only its owner can access loads."""
    path = tmp_path / "keyring.json"
    crypto.save_keyring(keyring, path)
    path.chmod(mode)
    assert crypto.load_keyring(env_value=None, path=path) == keyring


def test_load_missing_file(tmp_path: Path) -> None:
    """With no env value and no file, loading fails clearly."""
    with pytest.raises(CryptoError, match="does not exist"):
        crypto.load_keyring(env_value="", path=tmp_path / "nope.json")


def test_env_wins_over_file(keyring: Keyring, tmp_path: Path) -> None:
    """A non-empty env value is used even when a (bad) file exists; an empty one is not."""
    path = tmp_path / "keyring.json"
    other = crypto.generate_keyring()
    crypto.save_keyring(other, path)
    assert crypto.load_keyring(env_value=keyring.to_json(), path=path) == keyring
    assert crypto.load_keyring(env_value="  ", path=path) == other
    path.chmod(0o644)
    assert crypto.load_keyring(env_value=keyring.to_json(), path=path) == keyring


def test_save_is_private_and_atomic(keyring: Keyring, tmp_path: Path) -> None:
    """Saving creates the directory, leaves mode 0600 and no temp files, and overwrites."""
    path = tmp_path / "instance" / "keyring.json"
    old_umask = os.umask(0)
    try:
        crypto.save_keyring(keyring, path)
        rotated, _ = keyring.with_new_kek()
        crypto.save_keyring(rotated, path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["keyring.json"]
    assert crypto.load_keyring(env_value=None, path=path) == rotated


def test_blind_index(keyring: Keyring) -> None:
    """Stable for equal input; different by value, kind and index key; hex of `length` bytes."""
    index = crypto.blind_index(keyring, "nhs_number", "9434765919")
    assert index == crypto.blind_index(keyring, "nhs_number", "9434765919")
    assert re.fullmatch(r"[0-9a-f]{32}", index)
    assert index != crypto.blind_index(keyring, "nhs_number", "9434765918")
    assert index != crypto.blind_index(keyring, "surname", "9434765919")
    assert index != crypto.blind_index(crypto.generate_keyring(), "nhs_number", "9434765919")
    assert len(crypto.blind_index(keyring, "nhs_number", "9434765919", length=8)) == 16
    assert "9434765919" not in index


def test_blind_index_ignores_other_keys(keyring: Keyring) -> None:
    """Rotating KEKs does not change blind indexes (they use the separate index key)."""
    rotated, _ = keyring.with_new_kek()
    assert crypto.blind_index(rotated, "dob", "2015-03-01") == crypto.blind_index(
        keyring, "dob", "2015-03-01"
    )


def test_audit_mac_chain(keyring: Keyring) -> None:
    """Each MAC depends on the previous one, so editing or reordering entries shows."""
    entries = [b"created HO-2026-000123", b"viewed", b"acknowledged"]
    macs, prev = [], crypto.AUDIT_GENESIS_MAC
    for entry in entries:
        prev = crypto.audit_mac(keyring, prev, entry)
        macs.append(prev)
    assert len(set(macs)) == 3 and all(len(m) == 32 for m in macs)
    assert crypto.audit_mac(keyring, macs[0], entries[1]) == macs[1]
    assert crypto.audit_mac(keyring, macs[0], b"edited") != macs[1]
    assert crypto.audit_mac(keyring, crypto.AUDIT_GENESIS_MAC, entries[1]) != macs[1]
    assert crypto.audit_mac(crypto.generate_keyring(), macs[0], entries[1]) != macs[1]
    assert crypto.verify_audit_mac(keyring, macs[1], entries[2], macs[2])
    assert not crypto.verify_audit_mac(keyring, macs[0], entries[2], macs[2])


def test_sign_and_verify(keyring: Keyring) -> None:
    """Checkpoints verify with the keyring's key and fail when anything changes."""
    message = b"checkpoint 1042 " + bytes(32)
    signature = crypto.sign(keyring, message)
    assert crypto.verify_signature(keyring, message, signature)
    assert not crypto.verify_signature(keyring, message + b"!", signature)
    assert not crypto.verify_signature(keyring, message, flip(signature, 0, 1))
    assert not crypto.verify_signature(keyring, message, signature[:-1])
    assert not crypto.verify_signature(crypto.generate_keyring(), message, signature)
    public = crypto.public_signing_key(keyring)
    assert len(public) == 32 and public != keyring.signing_key


def make_app(tmp_path: Path, **config: Any) -> flask.Flask:
    """A bare Flask app with its instance folder in `tmp_path`."""
    app = flask.Flask(__name__, instance_path=str(tmp_path))
    app.config.update(config)
    return app


def test_init_app_in_production_without_keys_refuses_to_start(tmp_path: Path) -> None:
    """Production never starts without a keyring."""
    with pytest.raises(RuntimeError, match="refusing to start without keys"):
        crypto.init_app(make_app(tmp_path, ENV="production"))


def test_init_app_in_development_without_keys_loads_none(tmp_path: Path) -> None:
    """Development starts, so that `keys init` can run, but key use fails clearly."""
    app = make_app(tmp_path)
    crypto.init_app(app)
    assert app.extensions["handover.keyring"] is None
    with app.app_context(), pytest.raises(CryptoError, match="keys init"):
        crypto.current_keyring()


def test_init_app_loads_instance_file(keyring: Keyring, tmp_path: Path) -> None:
    """The default keyring file lives in the instance folder."""
    crypto.save_keyring(keyring, tmp_path / "keyring.json")
    app = make_app(tmp_path, ENV="production")
    crypto.init_app(app)
    with app.app_context():
        assert crypto.current_keyring() == keyring


def test_init_app_sources_in_order(
    keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HANDOVER_KEYRING beats config KEYRING, which beats KEYRING_FILE."""
    from_file, from_config = crypto.generate_keyring(), crypto.generate_keyring()
    crypto.save_keyring(from_file, tmp_path / "elsewhere" / "k.json")
    app = make_app(tmp_path, KEYRING_FILE=str(tmp_path / "elsewhere" / "k.json"))
    crypto.init_app(app)
    assert app.extensions["handover.keyring"] == from_file
    app.config["KEYRING"] = from_config.to_json()
    crypto.init_app(app)
    assert app.extensions["handover.keyring"] == from_config
    monkeypatch.setenv("HANDOVER_KEYRING", keyring.to_json())
    crypto.init_app(app)
    assert app.extensions["handover.keyring"] == keyring


def test_set_keyring(keyring: Keyring, tmp_path: Path) -> None:
    """set_keyring replaces what current_keyring returns."""
    app = make_app(tmp_path)
    crypto.init_app(app)
    crypto.set_keyring(app, keyring)
    with app.app_context():
        assert crypto.current_keyring() is keyring
