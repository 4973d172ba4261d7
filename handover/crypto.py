"""Envelope encryption, blind indexes, audit MACs and signatures: the only user of `cryptography`.

Every record has its own data key (DEK), stored wrapped by the active key-encryption key (KEK).
Every encrypted blob is bound by its associated data to the place it belongs, so a ciphertext
moved to another table, record, version or section fails to decrypt. Error messages and
reprs never carry key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import flask
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from handover import timeutil

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_VERSION = 1
AUDIT_GENESIS_MAC = bytes(32)
"""The `prev_mac` to use for the first entry of an audit chain."""

_VERSION_BYTE = bytes([FORMAT_VERSION])
_KEK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_EXTENSION = "handover.keyring"
_JSON_FIELDS = frozenset({"version", "active_kek", "keks", "index_key", "audit_key", "signing_key"})


class CryptoError(Exception):
    """Base error; messages never contain key material or plaintext."""


class UnknownKeyError(CryptoError):
    """A key id that is not in the keyring."""


class DecryptionError(CryptoError):
    """A failed tag, a malformed blob, or a blob presented in the wrong place."""


@dataclass(frozen=True, repr=False)
class Keyring:
    """All keys of one deployment; immutable, so rotation produces a new keyring."""

    keks: Mapping[str, bytes]
    active_kek_id: str
    index_key: bytes
    audit_key: bytes
    signing_key: bytes
    _kek_ciphers: Mapping[str, AESGCM] = field(init=False, compare=False)
    _signer: Ed25519PrivateKey = field(init=False, compare=False)
    # Blind-index subkeys by kind, made on first use: one HMAC a digest instead of two.
    _index_subkeys: dict[str, bytes] = field(init=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Validate every key and build the cipher objects once, not per call."""
        keks = dict(self.keks)
        if not keks:
            raise CryptoError("invalid keyring: field 'keks' is empty")
        for kek_id, key in keks.items():
            _check_kek_id(kek_id, "keks")
            _check_key(key, f"keks[{kek_id}]")
        if not isinstance(self.active_kek_id, str) or self.active_kek_id not in keks:
            raise CryptoError("invalid keyring: field 'active_kek' does not name a KEK in 'keks'")
        for name in ("index_key", "audit_key", "signing_key"):
            _check_key(getattr(self, name), name)
        ciphers = {kek_id: AESGCM(key) for kek_id, key in keks.items()}
        object.__setattr__(self, "keks", MappingProxyType(keks))
        object.__setattr__(self, "_kek_ciphers", MappingProxyType(ciphers))
        object.__setattr__(self, "_signer", Ed25519PrivateKey.from_private_bytes(self.signing_key))

    def __repr__(self) -> str:
        """Show the KEK ids and the active id only, never key bytes."""
        return f"Keyring(active_kek_id={self.active_kek_id!r}, kek_ids={sorted(self.keks)!r})"

    def to_json(self) -> str:
        """Serialise to the keyring file / HANDOVER_KEYRING format."""
        return json.dumps(
            {
                "version": 1,
                "active_kek": self.active_kek_id,
                "keks": {kek_id: _b64(key) for kek_id, key in self.keks.items()},
                "index_key": _b64(self.index_key),
                "audit_key": _b64(self.audit_key),
                "signing_key": _b64(self.signing_key),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse and validate a keyring; errors name the bad field, never its value."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError):
            raise CryptoError("invalid keyring: not valid JSON") from None
        if not isinstance(data, dict):
            raise CryptoError("invalid keyring: expected a JSON object")
        missing = sorted(_JSON_FIELDS - data.keys())
        if missing:
            raise CryptoError(f"invalid keyring: missing field(s) {', '.join(missing)}")
        if len(data) != len(_JSON_FIELDS):
            raise CryptoError("invalid keyring: unexpected extra field(s)")
        if data["version"] != 1 or isinstance(data["version"], bool):
            raise CryptoError("invalid keyring: field 'version' must be 1")
        return cls(
            keks=_parse_keks(data["keks"]),
            active_kek_id=data["active_kek"],
            index_key=_unb64(data["index_key"], "index_key"),
            audit_key=_unb64(data["audit_key"], "audit_key"),
            signing_key=_unb64(data["signing_key"], "signing_key"),
        )

    def with_new_kek(self) -> tuple[Keyring, str]:
        """Add a fresh KEK and make it active; return the new keyring and the new id."""
        kek_id = _new_kek_id(self.keks.keys())
        keks = {**self.keks, kek_id: secrets.token_bytes(KEY_BYTES)}
        return self._replace(keks=keks, active_kek_id=kek_id), kek_id

    def without_kek(self, kek_id: str) -> Keyring:
        """Retire a KEK that no DEK uses any more; refuse the active or an unknown id."""
        if kek_id not in self.keks:
            raise UnknownKeyError(f"cannot retire KEK {kek_id!r}: not in the keyring")
        if kek_id == self.active_kek_id:
            raise CryptoError(f"cannot retire KEK {kek_id!r}: it is the active KEK")
        keks = {other: key for other, key in self.keks.items() if other != kek_id}
        return self._replace(keks=keks, active_kek_id=self.active_kek_id)

    def _replace(self, *, keks: Mapping[str, bytes], active_kek_id: str) -> Keyring:
        """Return a copy with a different KEK set."""
        return Keyring(
            keks=keks,
            active_kek_id=active_kek_id,
            index_key=self.index_key,
            audit_key=self.audit_key,
            signing_key=self.signing_key,
        )


def _check_kek_id(kek_id: object, where: str) -> None:
    """Reject KEK ids that cannot be stored in a wrapped DEK header."""
    if not isinstance(kek_id, str) or not _KEK_ID_RE.fullmatch(kek_id):
        raise CryptoError(
            f"invalid keyring: a KEK id in '{where}' must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )


def _check_key(key: object, name: str) -> None:
    """Reject anything but exactly 32 bytes."""
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise CryptoError(f"invalid keyring: field '{name}' must be {KEY_BYTES} bytes")


def _b64(key: bytes) -> str:
    """Encode bytes as standard base64 text."""
    return base64.b64encode(key).decode("ascii")


def _unb64(value: Any, name: str) -> bytes:
    """Decode a base64 field to exactly 32 bytes."""
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        key = None
    if key is None or len(key) != KEY_BYTES:
        raise CryptoError(f"invalid keyring: field '{name}' must be base64 of {KEY_BYTES} bytes")
    return key


def _parse_keks(value: Any) -> dict[str, bytes]:
    """Parse the `keks` object of the JSON form."""
    if not isinstance(value, dict) or not value:
        raise CryptoError("invalid keyring: field 'keks' must be a non-empty object")
    keks: dict[str, bytes] = {}
    for kek_id, key in value.items():
        _check_kek_id(kek_id, "keks")
        keks[kek_id] = _unb64(key, f"keks[{kek_id}]")
    return keks


def _new_kek_id(taken: Container[str]) -> str:
    """Make a KEK id like ``kek-20260314-a1b2c3`` that is not already taken."""
    while True:
        kek_id = f"kek-{timeutil.now():%Y%m%d}-{secrets.token_hex(3)}"
        if kek_id not in taken:
            return kek_id


def generate_keyring() -> Keyring:
    """Create a keyring of fresh random keys with one active KEK."""
    kek_id = _new_kek_id(())
    return Keyring(
        keks={kek_id: secrets.token_bytes(KEY_BYTES)},
        active_kek_id=kek_id,
        index_key=secrets.token_bytes(KEY_BYTES),
        audit_key=secrets.token_bytes(KEY_BYTES),
        signing_key=secrets.token_bytes(KEY_BYTES),
    )


def load_keyring(*, env_value: str | None, path: Path) -> Keyring:
    """Load from the HANDOVER_KEYRING text if non-empty, else from an owner-only keyring file."""
    if env_value and env_value.strip():
        return _parse_from(env_value, "HANDOVER_KEYRING")
    return _parse_from(_read_private_file(path), f"keyring file {path}")


def _parse_from(text: str, source: str) -> Keyring:
    """Parse a keyring, saying where it came from if it is invalid."""
    try:
        return Keyring.from_json(text)
    except CryptoError as exc:
        raise CryptoError(f"{source}: {exc}") from None


def _read_private_file(path: Path) -> str:
    """Read a regular file that neither group nor others may read or write."""
    try:
        handle = open(path, "rb")  # fstat the open file, not the path, so the check can't race
    except FileNotFoundError:
        raise CryptoError(f"keyring file {path} does not exist") from None
    except OSError as exc:
        raise CryptoError(f"cannot open keyring file {path}: {exc.strerror}") from None
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise CryptoError(f"keyring file {path} is not a regular file")
        if mode & 0o077:
            raise CryptoError(
                f"keyring file {path} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
            )
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptoError(f"keyring file {path} is not UTF-8 text") from None


def save_keyring(keyring: Keyring, path: Path) -> None:
    """Write the keyring atomically with mode 0600, creating the parent directory."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(keyring.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(*parts: bytes) -> bytes:
    """Length-prefix and join parts, so that different tuples never encode the same."""
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _dek_ad(kek_id: str, record_id: str) -> bytes:
    """Associated data of a wrapped DEK: format version, KEK id and record id."""
    return _encode(b"handover:dek", _VERSION_BYTE, kek_id.encode("ascii"), record_id.encode())


def new_dek() -> bytes:
    """Return a fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_BYTES)


def wrap_dek(keyring: Keyring, dek: bytes, *, record_id: str) -> bytes:
    """Wrap a record's DEK under the active KEK, bound to that record."""
    _check_dek(dek)
    kek_id = keyring.active_kek_id
    nonce = os.urandom(NONCE_BYTES)
    sealed = keyring._kek_ciphers[kek_id].encrypt(nonce, dek, _dek_ad(kek_id, record_id))
    return _VERSION_BYTE + bytes([len(kek_id)]) + kek_id.encode("ascii") + nonce + sealed


def _split_wrapped(wrapped: bytes) -> tuple[str, bytes, bytes]:
    """Split a wrapped DEK into KEK id, nonce and sealed key, checking its shape."""
    if len(wrapped) < 2 or wrapped[0] != FORMAT_VERSION:
        raise DecryptionError("wrapped DEK is malformed or of an unknown format version")
    end = 2 + wrapped[1]
    if len(wrapped) != end + NONCE_BYTES + KEY_BYTES + TAG_BYTES:
        raise DecryptionError("wrapped DEK is malformed: wrong length")
    kek_id = wrapped[2:end].decode("ascii", errors="replace")
    if not _KEK_ID_RE.fullmatch(kek_id):
        raise DecryptionError("wrapped DEK is malformed: bad KEK id")
    return kek_id, wrapped[end : end + NONCE_BYTES], wrapped[end + NONCE_BYTES :]


def wrapped_kek_id(wrapped: bytes) -> str:
    """Return the id of the KEK a stored DEK is wrapped under."""
    return _split_wrapped(wrapped)[0]


def unwrap_dek(keyring: Keyring, wrapped: bytes, *, record_id: str) -> bytes:
    """Unwrap a record's DEK with the KEK named in it."""
    kek_id, nonce, sealed = _split_wrapped(wrapped)
    cipher = keyring._kek_ciphers.get(kek_id)
    if cipher is None:
        raise UnknownKeyError(f"wrapped DEK names KEK {kek_id!r}, which is not in the keyring")
    try:
        return cipher.decrypt(nonce, sealed, _dek_ad(kek_id, record_id))
    except InvalidTag:
        raise DecryptionError(
            f"wrapped DEK failed authentication under KEK {kek_id!r} (tampered or wrong record)"
        ) from None


def rewrap_dek(keyring: Keyring, wrapped: bytes, *, record_id: str) -> bytes:
    """Unwrap with the DEK's own KEK and wrap again under the active one."""
    return wrap_dek(keyring, unwrap_dek(keyring, wrapped, record_id=record_id), record_id=record_id)


def _check_dek(dek: bytes) -> None:
    """A DEK of the wrong size is a programming error, not bad data."""
    if not isinstance(dek, bytes) or len(dek) != KEY_BYTES:
        raise ValueError(f"a DEK must be {KEY_BYTES} bytes")


def _place_ad(table: str, record_id: str, version: int, section: str) -> bytes:
    """Associated data binding a blob to its table, record, version and section."""
    if isinstance(version, bool) or not 0 <= version < 2**63:
        raise ValueError("version must be a non-negative int")
    return _encode(
        b"handover:blob",
        _VERSION_BYTE,
        table.encode(),
        record_id.encode(),
        version.to_bytes(8, "big"),
        section.encode(),
    )


def encrypt(
    dek: bytes, plaintext: bytes, *, table: str, record_id: str, version: int, section: str
) -> bytes:
    """Encrypt one blob under its record's DEK, bound to its place."""
    _check_dek(dek)
    nonce = os.urandom(NONCE_BYTES)
    ad = _place_ad(table, record_id, version, section)
    return _VERSION_BYTE + nonce + AESGCM(dek).encrypt(nonce, plaintext, ad)


def decrypt(
    dek: bytes, blob: bytes, *, table: str, record_id: str, version: int, section: str
) -> bytes:
    """Decrypt one blob; fails if it was tampered with or moved from its place."""
    _check_dek(dek)
    ad = _place_ad(table, record_id, version, section)
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or blob[0] != FORMAT_VERSION:
        raise DecryptionError("encrypted blob is malformed or of an unknown format version")
    try:
        return AESGCM(dek).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], ad)
    except InvalidTag:
        raise DecryptionError(
            "encrypted blob failed authentication (tampered, wrong key or wrong place)"
        ) from None


def blind_index(keyring: Keyring, kind: str, normalised: str, *, length: int = 16) -> str:
    """Keyed equality index of a normalised value; unrelated across kinds and keyrings."""
    if not kind:
        raise ValueError("blind index kind must not be empty")
    if not 1 <= length <= hashlib.sha256().digest_size:
        raise ValueError("blind index length must be 1-32 bytes")
    subkey = keyring._index_subkeys.get(kind)
    if subkey is None:
        subkey = hmac.digest(keyring.index_key, b"blind-index:" + kind.encode(), "sha256")
        keyring._index_subkeys[kind] = subkey
    return hmac.digest(subkey, normalised.encode(), "sha256")[:length].hex()


def audit_mac(keyring: Keyring, prev_mac: bytes, entry: bytes) -> bytes:
    """Chain MAC of an audit entry: HMAC-SHA256(audit_key, prev_mac || entry)."""
    if len(prev_mac) != hashlib.sha256().digest_size:
        raise ValueError("prev_mac must be 32 bytes (AUDIT_GENESIS_MAC for the first entry)")
    return hmac.digest(keyring.audit_key, prev_mac + entry, "sha256")


def verify_audit_mac(keyring: Keyring, prev_mac: bytes, entry: bytes, mac: bytes) -> bool:
    """Check an audit chain MAC in constant time."""
    return hmac.compare_digest(audit_mac(keyring, prev_mac, entry), mac)


def sign(keyring: Keyring, message: bytes) -> bytes:
    """Sign an audit checkpoint with the Ed25519 signing key."""
    return keyring._signer.sign(message)


def verify_signature(keyring: Keyring, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is the keyring's Ed25519 signature of `message`."""
    try:
        keyring._signer.public_key().verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_signing_key(keyring: Keyring) -> bytes:
    """Return the raw 32-byte Ed25519 public key, for verifiers outside the service."""
    return keyring._signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def init_app(app: flask.Flask) -> None:
    """Load the keyring at start-up; in production, refuse to start without one."""
    env_value = os.environ.get("HANDOVER_KEYRING") or app.config.get("KEYRING")
    path = Path(app.config.get("KEYRING_FILE") or Path(app.instance_path) / "keyring.json")
    keyring: Keyring | None
    try:
        keyring = load_keyring(env_value=env_value, path=path)
    except CryptoError as exc:
        if app.config.get("ENV") == "production":
            raise RuntimeError(f"refusing to start without keys: {exc}") from exc
        app.logger.warning("no keyring loaded (%s); run `flask --app handover keys init`", exc)
        keyring = None
    app.extensions[_EXTENSION] = keyring


def current_keyring() -> Keyring:
    """Return the keyring of the current app, or fail with how to create one."""
    keyring = flask.current_app.extensions.get(_EXTENSION)
    if not isinstance(keyring, Keyring):
        raise CryptoError("no keyring loaded: run `flask --app handover keys init`")
    return keyring


def set_keyring(app: flask.Flask, keyring: Keyring) -> None:
    """Replace the app's loaded keyring (after `keys init` or `keys rotate`, and in tests)."""
    app.extensions[_EXTENSION] = keyring
