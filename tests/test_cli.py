"""Operator commands, run as an operator would: keys, directory, users, audit, demo and db."""

from __future__ import annotations

import re
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from handover import create_app, crypto
from handover.audit import AuditEvent
from handover.auth.passwords import check_password
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory.models import LocalAuthority, Team, User
from handover.records import storage
from handover.timeutil import now
from tests.conftest import DEMO_USERS, Api, reference_record

EXAMPLE_DIRECTORY = PROJECT_ROOT / "config" / "directory.example.toml"
EDT_WORKER = DEMO_USERS["edt_worker"]


def invoke(runner: FlaskCliRunner, command: str, *args: str) -> Result:
    """Run `flask --app handover COMMAND ARGS...`; COMMAND is split as a shell would."""
    result: Result = runner.invoke(args=[*shlex.split(command), *args])
    return result


def ok(runner: FlaskCliRunner, command: str, *args: str) -> Result:
    """Run a command that must succeed."""
    result = invoke(runner, command, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def count(app: Flask, model: Any, *where: Any) -> int:
    """How many rows of ``model`` match ``where``."""
    with app.app_context(), transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def key_status(app: Flask) -> dict[str, int]:
    """Records per KEK id, straight from the database."""
    with app.app_context(), transaction() as session:
        return storage.key_status(session)


def create_handovers(api: Api, n: int) -> dict[str, dict[str, Any]]:
    """Create ``n`` drafts through the API; return each record as the API reads it back."""
    records = {}
    for _ in range(n):
        created = api.post("/handovers", as_="edt_worker", json_body=reference_record())
        assert created.status_code == 201, created.get_json()
        handover_id = created.get_json()["id"]
        records[handover_id] = read_record(api, handover_id)
    return records


def read_record(api: Api, handover_id: str) -> dict[str, Any]:
    """GET one handover as the EDT worker, which must succeed."""
    response = api.get(f"/handovers/{handover_id}", as_="edt_worker")
    assert response.status_code == 200, response.get_json()
    record: dict[str, Any] = response.get_json()["record"]
    return record


# --- an app whose keyring lives in a file, as `keys init|rotate|retire` manage it -------------


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "keyring.json"


def file_keyring_app(database_url: str, instance: Path, keyring_file: Path, **extra: Any) -> Flask:
    """Build an app configured with KEYRING_FILE and no KEYRING."""
    return create_app(
        {
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": database_url,
            "KEYRING_FILE": str(keyring_file),
            "TESTING": True,
            **extra,
        }
    )


@pytest.fixture
def file_app(
    database_url: str, tmp_path: Path, keyring_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """A fresh app with KEYRING_FILE configured and no keyring anywhere yet."""
    monkeypatch.delenv("HANDOVER_KEYRING", raising=False)
    app = file_keyring_app(database_url, tmp_path, keyring_file)
    yield app
    app.extensions["handover.engine"].dispose()


@pytest.fixture
def file_runner(file_app: Flask) -> FlaskCliRunner:
    return file_app.test_cli_runner()


@pytest.fixture
def file_api(file_app: Flask, file_runner: FlaskCliRunner) -> Api:
    """`keys init`, `directory load` the example and `users token` the EDT worker."""
    ok(file_runner, "keys init")
    ok(file_runner, "directory load", str(EXAMPLE_DIRECTORY))
    token = ok(file_runner, "users token", EDT_WORKER).output.strip()
    return Api(file_app.test_client(), {"edt_worker": token})


def file_keyring(path: Path) -> crypto.Keyring:
    return crypto.load_keyring(env_value=None, path=path)


# --- keys -------------------------------------------------------------------------------------


def test_keys_init_creates_an_owner_only_keyring_once(
    file_app: Flask, file_runner: FlaskCliRunner, keyring_file: Path
) -> None:
    assert not keyring_file.exists()
    result = ok(file_runner, "keys init")
    assert result.output == f"keyring created: {keyring_file}\n"
    assert stat.S_IMODE(keyring_file.stat().st_mode) == 0o600
    written = keyring_file.read_bytes()
    with file_app.app_context():
        assert crypto.current_keyring().to_json() == file_keyring(keyring_file).to_json()

    again = ok(file_runner, "keys init")
    assert again.output == f"keyring exists: {keyring_file}\n"
    assert keyring_file.read_bytes() == written
    assert stat.S_IMODE(keyring_file.stat().st_mode) == 0o600


def test_rotate_rewrap_retire_keeps_every_record_readable(
    file_app: Flask,
    file_runner: FlaskCliRunner,
    file_api: Api,
    keyring_file: Path,
    database_url: str,
    tmp_path: Path,
) -> None:
    records = create_handovers(file_api, 3)
    old = file_keyring(keyring_file).active_kek_id
    assert key_status(file_app) == {old: 3}

    rotated = ok(file_runner, "keys rotate")
    match = re.search(
        r"active KEK is now (\S+); restart the service, then run `keys rewrap`", rotated.output
    )
    assert match, rotated.output
    new = match.group(1)
    on_disk = file_keyring(keyring_file)
    assert (on_disk.active_kek_id, set(on_disk.keks)) == (new, {old, new})
    assert stat.S_IMODE(keyring_file.stat().st_mode) == 0o600

    rewrapped = ok(file_runner, "keys rewrap")
    assert rewrapped.output.splitlines()[-1] == f"done: 3 re-wrapped; by KEK: {new}=3"
    status = ok(file_runner, "keys status").output.splitlines()
    assert status[0].startswith(f"active KEK: {new}; known: ")
    assert set(status[0].split("known: ")[1].split(", ")) == {old, new}
    assert status[1] == f"records by KEK: {new}=3"

    retired = ok(file_runner, "keys retire", old)
    assert retired.output == f"retired {old}\n"
    assert set(file_keyring(keyring_file).keks) == {new}
    status = ok(file_runner, "keys status").output.splitlines()
    assert status == [f"active KEK: {new}; known: {new}", f"records by KEK: {new}=3"]
    for handover_id, record in records.items():
        assert read_record(file_api, handover_id) == record == reference_record()

    # After the restart the rotate message asks for, the keyring file alone opens every record.
    restarted = file_keyring_app(database_url, tmp_path, keyring_file)
    try:
        api = Api(restarted.test_client(), file_api.tokens)
        for handover_id, record in records.items():
            assert read_record(api, handover_id) == record
    finally:
        restarted.extensions["handover.engine"].dispose()


def test_retire_refuses_while_records_are_wrapped_under_the_old_kek(
    file_app: Flask, file_runner: FlaskCliRunner, file_api: Api, keyring_file: Path
) -> None:
    records = create_handovers(file_api, 2)
    old = file_keyring(keyring_file).active_kek_id
    ok(file_runner, "keys rotate")
    before = keyring_file.read_bytes()

    refused = invoke(file_runner, "keys retire", old)
    assert refused.exit_code != 0
    assert f"2 records are still wrapped under {old}" in refused.output
    assert "keys rewrap" in refused.output
    assert keyring_file.read_bytes() == before
    for handover_id, record in records.items():
        assert read_record(file_api, handover_id) == record


@pytest.mark.parametrize("which", ["active", "unknown"])
def test_retire_refuses_the_active_or_an_unknown_kek(
    file_runner: FlaskCliRunner, file_api: Api, keyring_file: Path, which: str
) -> None:
    kek_id = file_keyring(keyring_file).active_kek_id if which == "active" else "kek-nonesuch"
    before = keyring_file.read_bytes()
    assert invoke(file_runner, "keys retire", kek_id).exit_code != 0
    assert keyring_file.read_bytes() == before


def test_rewrap_resumes_in_batches_and_reports_progress(
    file_app: Flask, file_runner: FlaskCliRunner, file_api: Api, keyring_file: Path
) -> None:
    def _progress(total: int, new: str, n_new: int, old: str, n_old: int) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in sorted({new: n_new, old: n_old}.items()))
        return f"re-wrapped {total}; by KEK: {counts}"

    records = create_handovers(file_api, 4)
    old = file_keyring(keyring_file).active_kek_id
    ok(file_runner, "keys rotate")
    new = file_keyring(keyring_file).active_kek_id
    # A run that stopped after its first batch of one.
    with file_app.app_context(), transaction() as session:
        assert storage.rewrap_batch(session, keyring=crypto.current_keyring(), batch_size=1) == 1
    assert key_status(file_app) == {old: 3, new: 1}

    resumed = ok(file_runner, "keys rewrap --batch-size 1")
    assert resumed.output.splitlines() == [
        _progress(1, new, 2, old, 2),
        _progress(2, new, 3, old, 1),
        f"re-wrapped 3; by KEK: {new}=4",
        f"done: 3 re-wrapped; by KEK: {new}=4",
    ]
    assert key_status(file_app) == {new: 4}
    again = ok(file_runner, "keys rewrap --batch-size 1")
    assert again.output == f"done: 0 re-wrapped; by KEK: {new}=4\n"
    for handover_id, record in records.items():
        assert read_record(file_api, handover_id) == record


def test_rewrap_rejects_a_batch_size_below_one(file_runner: FlaskCliRunner, file_api: Api) -> None:
    result = invoke(file_runner, "keys rewrap --batch-size 0")
    assert result.exit_code == 2
    assert "--batch-size" in result.output


@pytest.mark.parametrize("args", ["init", "rotate", "retire kek-any"])
def test_keys_commands_refuse_a_keyring_from_the_environment(
    app: Flask,
    runner: FlaskCliRunner,
    keyring: crypto.Keyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: str,
) -> None:
    monkeypatch.setenv("HANDOVER_KEYRING", keyring.to_json())
    result = invoke(runner, f"keys {args}")
    assert result.exit_code == 1
    assert "HANDOVER_KEYRING is set: manage that keyring where it is stored." in result.output
    assert list(tmp_path.glob("*keyring*")) == []
    with app.app_context():
        assert crypto.current_keyring().to_json() == keyring.to_json()


@pytest.mark.parametrize("args", ["init", "rotate", "retire kek-any"])
def test_keys_commands_refuse_a_keyring_from_the_configuration(
    app: Flask,
    runner: FlaskCliRunner,
    keyring: crypto.Keyring,
    tmp_path: Path,
    args: str,
) -> None:
    # A rotated keyring written to a file would be shadowed by KEYRING at the next start,
    # leaving every re-wrapped record under a KEK the service no longer has.
    result = invoke(runner, f"keys {args}")
    assert result.exit_code == 1
    assert "the KEYRING setting holds the keyring: manage it where it is stored." in result.output
    assert list(tmp_path.glob("*keyring*")) == []
    with app.app_context():
        assert crypto.current_keyring().to_json() == keyring.to_json()


# --- directory --------------------------------------------------------------------------------

GHOST_AUTHORITY = """
[[local_authorities]]
code = "ghostshire"
name = "Ghostshire Council"
"""
RENAMED_EDT = """
[[teams]]
code = "tri-borough-edt"
name = "Renamed EDT"
kind = "edt"
"""
GHOST_TEAM = """
[[teams]]
code = "ghost-fst"
name = "Ghostshire FST"
kind = "social_work"
local_authority = "ghostshire"
"""
GHOST_USER = """
[[users]]
email = "casper@ghostshire.example"
name = "Casper"
role = "social_worker"
team = "ghost-fst"
"""
BAD_DIRECTORIES = {
    "unknown team kind": (
        GHOST_AUTHORITY
        + RENAMED_EDT
        + GHOST_TEAM
        + '[[teams]]\ncode = "ghost-fire"\nname = "Fire"\nkind = "fire_brigade"\n',
        "teams.2.kind",
    ),
    "user in a missing team": (
        GHOST_AUTHORITY
        + RENAMED_EDT
        + GHOST_TEAM
        + GHOST_USER
        + '[[users]]\nemail = "w@ghostshire.example"\nname = "W"\nrole = "social_worker"\n'
        + 'team = "no-such-team"\n',
        "users.1.team",
    ),
    "day ends before it starts": (
        GHOST_AUTHORITY
        + RENAMED_EDT
        + GHOST_TEAM
        + '[[teams]]\ncode = "ghost-late"\nname = "Late"\nkind = "social_work"\n'
        + 'day_start = "17:00"\nday_end = "09:00"\n',
        "teams.2.day_end",
    ),
    "malformed TOML": (GHOST_AUTHORITY + RENAMED_EDT + "[[teams]]\ncode = ghost\n", "line 11"),
}


def test_directory_load_reads_the_example_file(app: Flask, runner: FlaskCliRunner) -> None:
    result = ok(runner, "directory load", str(EXAMPLE_DIRECTORY))
    assert result.output == "loaded 3 local_authorities, 6 teams, 9 users\n"
    assert (count(app, LocalAuthority), count(app, Team), count(app, User)) == (3, 6, 9)
    again = ok(runner, "directory load", str(EXAMPLE_DIRECTORY))  # an upsert
    assert again.output == result.output
    assert (count(app, LocalAuthority), count(app, Team), count(app, User)) == (3, 6, 9)


@pytest.mark.parametrize("text, path", BAD_DIRECTORIES.values(), ids=BAD_DIRECTORIES.keys())
def test_directory_load_rejects_a_bad_file_whole(
    app: Flask, runner: FlaskCliRunner, demo: dict[str, str], tmp_path: Path, text: str, path: str
) -> None:
    bad = tmp_path / "directory.toml"
    bad.write_text(text)
    result = invoke(runner, "directory load", str(bad))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert path in result.output
    assert count(app, LocalAuthority, LocalAuthority.code == "ghostshire") == 0
    assert count(app, Team, Team.code.like("ghost-%")) == 0
    assert count(app, User, User.email.like("%@ghostshire.example")) == 0
    assert count(app, Team, Team.name == "Tri-borough Emergency Duty Team") == 1


def test_directory_load_of_a_missing_file_fails(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "directory load", str(tmp_path / "nowhere.toml"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


# --- users ------------------------------------------------------------------------------------


def test_users_create_makes_a_user_who_can_sign_in(
    app: Flask, runner: FlaskCliRunner, demo: dict[str, str]
) -> None:
    result = ok(
        runner,
        'users create Nia.Stone@Tri-Borough.example --name "Nia Stone" --role edt_worker'
        " --team tri-borough-edt --password s3cret-enough",
    )
    assert result.output == "user nia.stone@tri-borough.example is edt_worker in tri-borough-edt\n"
    with app.app_context(), transaction() as session:
        user = session.scalars(
            sa.select(User).where(User.email == "nia.stone@tri-borough.example")
        ).one()
        assert user.name == "Nia Stone"
        assert (user.role, user.team_code) == ("edt_worker", "tri-borough-edt")
        assert check_password(user.password_hash, "s3cret-enough")


def test_users_create_refuses_a_role_the_team_cannot_hold(
    app: Flask, runner: FlaskCliRunner, demo: dict[str, str]
) -> None:
    result = invoke(
        runner,
        'users create pc.jones@tri-borough.example --name "PC Jones" --role police_officer'
        " --team tri-borough-edt",
    )
    assert result.exit_code == 1
    assert "role" in result.output and "police_officer" in result.output
    assert count(app, User, User.email == "pc.jones@tri-borough.example") == 0


def test_users_create_refuses_an_unknown_team(
    app: Flask, runner: FlaskCliRunner, demo: dict[str, str]
) -> None:
    result = invoke(
        runner, "users create x@tri-borough.example --name X --role edt_worker --team no-such-team"
    )
    assert result.exit_code == 1
    assert "team" in result.output and "no-such-team" in result.output
    assert count(app, User, User.email == "x@tri-borough.example") == 0


def test_users_token_prints_a_working_bearer_token(
    app: Flask, runner: FlaskCliRunner, demo: dict[str, str]
) -> None:
    token = ok(runner, "users token", EDT_WORKER).output.strip()
    assert token and " " not in token
    client = app.test_client()
    response = client.get("/api/v1/handovers", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"handovers": []}
    wrong = client.get("/api/v1/handovers", headers={"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401


def test_users_token_for_an_unknown_email_fails(
    runner: FlaskCliRunner, demo: dict[str, str]
) -> None:
    result = invoke(runner, "users token", "nobody@nowhere.example")
    assert result.exit_code == 1
    assert "no user nobody@nowhere.example" in result.output


# --- audit ------------------------------------------------------------------------------------


def last_seq(app: Flask) -> int:
    with app.app_context(), transaction() as session:
        return session.scalar(sa.select(sa.func.max(AuditEvent.seq))) or 0


def test_audit_verify_and_checkpoint_after_activity(
    app: Flask, runner: FlaskCliRunner, api: Api
) -> None:
    create_handovers(api, 2)
    seq = last_seq(app)
    assert seq >= 4
    assert ok(runner, "audit verify").output == f"audit chain OK: {seq} entries\n"
    assert ok(runner, "audit checkpoint").output == f"checkpoint at seq {seq}\n"
    create_handovers(api, 1)
    assert ok(runner, "audit verify").output == f"audit chain OK: {last_seq(app)} entries\n"


def test_audit_verify_names_an_altered_entry(app: Flask, runner: FlaskCliRunner, api: Api) -> None:
    create_handovers(api, 2)
    ok(runner, "audit checkpoint")
    with app.app_context(), transaction() as session:
        if session.get_bind().dialect.name == "postgresql":  # past the append-only trigger
            session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3).values(details="{}"))
    result = invoke(runner, "audit verify")
    assert result.exit_code == 1
    assert "audit chain BROKEN at seq 3: entry altered" in result.output


# --- demo -------------------------------------------------------------------------------------

DEMO_LINE = re.compile(r"^ +(?P<role>\w+) +(?P<email>\S+@\S+) +token (?P<token>\S+)$")


def test_demo_prints_working_sign_in_details(app: Flask, runner: FlaskCliRunner) -> None:
    lines = ok(runner, "demo").output.splitlines()
    assert lines[0] == "Demo users (password for all: demo-handover-2026)"
    printed = [DEMO_LINE.match(line) for line in lines[1:]]
    assert all(printed), lines
    users = {m["email"]: m for m in printed if m}
    assert set(users) == set(DEMO_USERS.values())
    client = app.test_client()
    with app.app_context(), transaction() as session:
        roles = {email: role for email, role in session.execute(sa.select(User.email, User.role))}
    for email, line in users.items():
        assert line["role"] == roles[email]
        response = client.get(
            "/api/v1/handovers", headers={"Authorization": f"Bearer {line['token']}"}
        )
        assert response.status_code == 200, (email, response.get_json())


def test_demo_is_refused_in_production(
    database_url: str, tmp_path: Path, keyring: crypto.Keyring
) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "ENV": "production",
        }
    )
    try:
        result = invoke(app.test_cli_runner(), "demo")
        assert result.exit_code == 1
        assert "the demo directory is for development only" in result.output
        assert count(app, User) == count(app, Team) == 0
    finally:
        app.extensions["handover.engine"].dispose()


# --- db ---------------------------------------------------------------------------------------


def test_db_check_passes_on_a_migrated_database(runner: FlaskCliRunner) -> None:
    result = ok(runner, "db check")
    assert "models and migrations agree" in result.output


def test_rotation_carries_totp_and_webhook_secrets_too(
    file_app: Flask, file_runner: FlaskCliRunner, file_api: Api, keyring_file: Path
) -> None:
    from handover.auth import totp
    from handover.directory import service as directory_service
    from handover.notifications import webhooks

    old = file_keyring(keyring_file).active_kek_id
    with file_app.app_context(), transaction() as session:
        user = directory_service.get_user_by_email(session, "sam.patel@northvale.example")
        assert user is not None
        secret = totp.begin_enrolment(session, user=user, keyring=crypto.current_keyring())
        webhooks.set_team_webhook(
            session,
            team_code="northvale-east-fst",
            url="http://127.0.0.1:9/hook",
            secret="whsec_test_0123456789",
            now=now(),
        )
    ok(file_runner, "keys rotate")
    new = file_keyring(keyring_file).active_kek_id
    assert ok(file_runner, "keys status").output.splitlines()[-1] == f"secret keys by KEK: {old}=2"
    assert invoke(file_runner, "keys retire", old).exit_code != 0  # the secrets still need it
    rewrapped = ok(file_runner, "keys rewrap").output
    assert "re-wrapped 2 secret keys (TOTP, webhooks)" in rewrapped
    assert ok(file_runner, "keys status").output.splitlines()[-1] == f"secret keys by KEK: {new}=2"
    ok(file_runner, "keys retire", old)
    with file_app.app_context(), transaction() as session:
        user = directory_service.get_user_by_email(session, "sam.patel@northvale.example")
        assert user is not None
        assert totp.begin_enrolment(session, user=user, keyring=crypto.current_keyring()) == secret
