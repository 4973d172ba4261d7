"""Operator commands: `flask --app handover db|keys|directory|users|audit|demo ...`."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session

from handover import audit, crypto, migrate
from handover.auth import totp
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import admin_service
from handover.directory import service as directory
from handover.directory.models import ROLES
from handover.directory.service import WEEKDAY_NAMES
from handover.errors import ValidationFailed
from handover.notifications import webhooks
from handover.records import storage
from handover.timeutil import now

db_cli = AppGroup("db", help="Database schema.")
keys_cli = AppGroup("keys", help="Key-encryption keys and data-key rotation.")
directory_cli = AppGroup("directory", help="Local authorities, teams and users.")
users_cli = AppGroup("users", help="People and their API tokens.")
teams_cli = AppGroup("teams", help="Teams and their working hours.")
audit_cli = AppGroup("audit", help="The audit chain.")

DEMO_DIRECTORY = PROJECT_ROOT / "config" / "directory.example.toml"
DEMO_PASSWORD = "demo-handover-2026"


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    migrate.upgrade()
    click.echo("database at head")


@db_cli.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check()
    click.echo("models and migrations agree")


def _keyring_path() -> Path:
    return Path(
        current_app.config.get("KEYRING_FILE") or Path(current_app.instance_path) / "keyring.json"
    )


def _require_file_keyring() -> None:
    if os.environ.get("HANDOVER_KEYRING"):
        raise click.ClickException(
            "HANDOVER_KEYRING is set: manage that keyring where it is stored."
        )
    if current_app.config.get("KEYRING"):
        raise click.ClickException(
            "the KEYRING setting holds the keyring: manage it where it is stored."
        )


@keys_cli.command("init")
def keys_init() -> None:
    """Create a keyring file if there is none (development; production brings its own)."""
    _require_file_keyring()
    path = _keyring_path()
    if path.exists():
        click.echo(f"keyring exists: {path}")
        return
    crypto.save_keyring(crypto.generate_keyring(), path)
    crypto.set_keyring(current_app, crypto.load_keyring(env_value=None, path=path))
    click.echo(f"keyring created: {path}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Add a new key-encryption key and make it active; then run `keys rewrap`."""
    _require_file_keyring()
    keyring, kek_id = crypto.current_keyring().with_new_kek()
    crypto.save_keyring(keyring, _keyring_path())
    crypto.set_keyring(current_app, keyring)
    click.echo(f"active KEK is now {kek_id}; restart the service, then run `keys rewrap`")


@keys_cli.command("rewrap")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None)
def keys_rewrap(batch_size: int | None) -> None:
    """Re-wrap every data key under the active KEK, in batches, online and resumable."""
    keyring = crypto.current_keyring()
    size = batch_size or current_app.config["REWRAP_BATCH_SIZE"]
    total = 0
    while True:
        with transaction() as session:
            changed = storage.rewrap_batch(session, keyring=keyring, batch_size=size)
        total += changed
        if changed == 0:
            break
        with transaction() as session:
            click.echo(f"re-wrapped {total}; by KEK: {_format_status(storage.key_status(session))}")
    with transaction() as session:
        secrets = totp.rewrap_secrets(session, keyring=keyring)
        secrets += webhooks.rewrap_secrets(session, keyring=keyring)
    if secrets:
        click.echo(f"re-wrapped {secrets} secret keys (TOTP, webhooks)")
    with transaction() as session:
        status = storage.key_status(session)
    click.echo(f"done: {total} re-wrapped; by KEK: {_format_status(status)}")


def _secret_key_status(session: Session) -> dict[str, int]:
    """How many secret keys (TOTP, webhook) each KEK wraps."""
    counts = totp.key_status(session)
    for kek_id, count in webhooks.key_status(session).items():
        counts[kek_id] = counts.get(kek_id, 0) + count
    return counts


def _format_status(status: dict[str, int]) -> str:
    return ", ".join(f"{kek}={count}" for kek, count in sorted(status.items())) or "no records"


@keys_cli.command("status")
def keys_status() -> None:
    """Show the active KEK and how many records each KEK wraps."""
    keyring = crypto.current_keyring()
    with transaction() as session:
        status = storage.key_status(session)
    click.echo(f"active KEK: {keyring.active_kek_id}; known: {', '.join(sorted(keyring.keks))}")
    click.echo(f"records by KEK: {_format_status(status)}")
    with transaction() as session:
        secrets = _secret_key_status(session)
    if secrets:
        click.echo(f"secret keys by KEK: {_format_status(secrets)}")


@keys_cli.command("retire")
@click.argument("kek_id")
def keys_retire(kek_id: str) -> None:
    """Remove an old KEK from the keyring once no record is wrapped under it."""
    _require_file_keyring()
    if kek_id == crypto.current_keyring().active_kek_id:
        raise click.ClickException(f"{kek_id} is the active KEK: rotate to a new one first")
    with transaction() as session:
        still = storage.key_status(session).get(kek_id, 0)
        still += _secret_key_status(session).get(kek_id, 0)
    if still:
        raise click.ClickException(
            f"{still} records are still wrapped under {kek_id}: run `keys rewrap`"
        )
    try:
        keyring = crypto.current_keyring().without_kek(kek_id)
    except crypto.CryptoError as error:
        raise click.ClickException(str(error)) from None
    crypto.save_keyring(keyring, _keyring_path())
    crypto.set_keyring(current_app, keyring)
    click.echo(f"retired {kek_id}")


def _load_directory_file(path: Path) -> dict[str, int]:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    with transaction() as session:
        return directory.load_directory(session, data, now=now())


@directory_cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def directory_load(path: Path) -> None:
    """Create or update LAs, teams and users from a TOML file."""
    try:
        counts = _load_directory_file(path)
    except (ValidationFailed, tomllib.TOMLDecodeError) as error:
        raise click.ClickException(str(error)) from None
    click.echo("loaded " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@users_cli.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--team", "team_code", required=True)
@click.option(
    "--password", default=None, help="Optional: without one the user signs in by token only."
)
def users_create(email: str, name: str, role: str, team_code: str, password: str | None) -> None:
    """Create or update a user with one role in one team."""
    try:
        with transaction() as session:
            directory.save_user(
                session,
                email=email,
                name=name,
                role=role,
                team_code=team_code,
                password=password,
                now=now(),
            )
    except ValidationFailed as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {email.lower()} is {role} in {team_code}")


@users_cli.command("token")
@click.argument("email")
def users_token(email: str) -> None:
    """Print a new API token for a user (shown once; only its digest is stored)."""
    with transaction() as session:
        user = directory.get_user_by_email(session, email)
        if user is None:
            raise click.ClickException(f"no user {email}")
        token = directory.issue_token(session, user=user, now=now())
    click.echo(token)


@users_cli.command("list")
@click.option("--team", "team_code", default=None, help="Only this team's users.")
def users_list(team_code: str | None) -> None:
    """List users: role, email, team, and whether they are active."""
    with transaction() as session:
        for user in directory.list_users(session, team_code=team_code):
            state = "active" if user.active else "INACTIVE"
            click.echo(f"{user.role:<15} {user.email:<40} {user.team_code:<24} {state}")


@users_cli.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Stop a user at once: API tokens revoked, browser sessions ended (audited)."""
    try:
        with transaction() as session:
            user = directory.get_user_by_email(session, email)
            if user is None:
                raise click.ClickException(f"no user {email}")
            revoked = admin_service.deactivate_user(session, user=user, actor_id=None, now=now())
    except ValidationFailed as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {email.lower()} deactivated; {revoked} API tokens revoked")


@teams_cli.command("list")
def teams_list() -> None:
    """List teams: code, kind, local authority, working days and hours, closure days."""
    with transaction() as session:
        for team in directory.list_teams(session):
            days = ",".join(WEEKDAY_NAMES[int(d)] for d in team.weekdays.split(",") if d)
            hours = f"{team.day_start:%H:%M}-{team.day_end:%H:%M}"
            covers = ",".join(sorted(directory.covered_authorities(team)))
            where = team.local_authority_code or covers
            state = "" if team.active else " INACTIVE"
            closed = f" closed {len(team.closures)} days" if team.closures else ""
            click.echo(
                f"{team.code:<24} {team.kind:<12} {where or '-':<20} {days} {hours}{closed}{state}"
            )


@teams_cli.command("webhook")
@click.argument("code")
@click.argument("url", required=False)
@click.option("--remove", is_flag=True, help="Stop POSTing the team's notifications.")
def teams_webhook(code: str, url: str | None, remove: bool) -> None:
    """Set a team's webhook URL and print a new signing secret (shown once), or remove it."""
    if remove:
        with transaction() as session:
            removed = webhooks.remove_team_webhook(session, team_code=code, now=now())
        click.echo(f"webhook of {code} removed" if removed else f"{code} had no webhook")
        return
    if not url:
        raise click.UsageError("give the webhook URL, or --remove")
    secret = webhooks.new_secret()
    try:
        with transaction() as session:
            webhooks.set_team_webhook(session, team_code=code, url=url, secret=secret, now=now())
    except ValidationFailed as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"webhook of {code} set: notifications are POSTed, signed, to the URL given")
    click.echo(f"signing secret (shown once; configure the receiver with it): {secret}")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk the chain and name the first entry that does not verify."""
    with transaction() as session:
        result = audit.verify(session, keyring=crypto.current_keyring())
    if not result.ok:
        click.echo(f"audit chain BROKEN at seq {result.bad_seq}: {result.problem}", err=True)
        sys.exit(1)
    click.echo(f"audit chain OK: {result.checked} entries")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the head of the chain so that truncation is detectable."""
    with transaction() as session:
        point = audit.checkpoint(session, now=now(), keyring=crypto.current_keyring())
    click.echo(f"checkpoint at seq {point.seq}")


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Load the demo directory and users and print how to sign in (development only)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("the demo directory is for development only")
    _load_directory_file(DEMO_DIRECTORY)
    with transaction() as session:
        click.echo(f"Demo users (password for all: {DEMO_PASSWORD})")
        for entry in tomllib.loads(DEMO_DIRECTORY.read_text())["users"]:
            user = directory.save_user(
                session,
                email=entry["email"],
                name=entry["name"],
                role=entry["role"],
                team_code=entry["team"],
                password=DEMO_PASSWORD,
                now=now(),
            )
            token = directory.issue_token(session, user=user, now=now())
            click.echo(f"  {user.role:<15} {user.email:<40} token {token}")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    for group in (db_cli, keys_cli, directory_cli, users_cli, teams_cli, audit_cli):
        app.cli.add_command(group)
    app.cli.add_command(demo)


@db_cli.command("revision")
@click.argument("message")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers: read and edit it)."""
    migrate.revision(message)
