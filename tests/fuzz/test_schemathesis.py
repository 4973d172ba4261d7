"""Fuzzing the JSON API from its OpenAPI document, signed in as each role in turn.

schemathesis reads /api/v1/openapi.json from the application and, for every operation, generates
requests that fit the document and requests that break it, on SQLite and on PostgreSQL, with the
bearer token of a demo user of each role. Every answer must be a documented status (never a 5xx)
with a body that fits the document; invalid input must be refused; a path's other methods must
answer 405 with ``Allow``; no operation may answer without the token.

Each role fuzzes its own database, prepared with handovers in several states, so that generated
ids can hit real records: most path ids are swapped for one of them. The seed is fixed, so a run
is repeatable. ``make test`` runs the CI size; ``make fuzz`` runs the longer one
(HANDOVER_FUZZ_EXAMPLES=200, HANDOVER_FUZZ_COVERAGE=1: schemathesis's boundary-value phase too).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import tomllib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from handover import create_app, crypto
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.timeutil import now
from tests.conftest import DATABASES, DEMO_USERS, Api, _empty_postgres
from tests.delivery.conftest import MONDAY_10, create, read_back, record_for, submit_at, tick

ROLES = (
    "edt_worker",
    "edt_manager",
    "social_worker",
    "team_manager",
    "police_officer",
    "admin",
    "auditor",
)
SEED = 20261128
MAX_EXAMPLES = int(os.environ.get("HANDOVER_FUZZ_EXAMPLES", "25"))
COVERAGE = os.environ.get("HANDOVER_FUZZ_COVERAGE", "") == "1"
# A request that fits the document may still be refused for what no schema can say (an unknown
# team, a transition the status does not allow, a record this role may not see): never with 400,
# which says the document let through something malformed.
ACCEPTABLE = ["2XX", "401", "403", "404", "409", "422"]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["all"],
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "with-security-parameters": False,
            # Refused with 400/422 before any view (PostgreSQL cannot store it): test_refusals.py.
            "allow-x00": False,
        },
        "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTABLE},
            # These follow links between operations, which the document does not declare.
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
        },
    }
)


class Target:
    """The WSGI application under test: each role's own app is swapped in by its fixture."""

    def __init__(self) -> None:
        """Start with an app that serves the document (no database): schemathesis loads it."""
        self.app: Flask = create_app(
            {
                "INSTANCE_PATH": tempfile.gettempdir(),  # nothing is written there
                "DATABASE_URL": "sqlite://",
                "KEYRING": crypto.generate_keyring().to_json(),
            }
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Pass the request to the current app."""
        response: Iterable[bytes] = self.app(environ, start_response)
        return response


TARGET = Target()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", TARGET, config=CONFIG)


@dataclass
class World:
    """One role's database: its token, and the ids and codes worth aiming at."""

    role: str
    token: str
    pools: dict[str, list[str]]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _database(request: pytest.FixtureRequest, folder: Any, kind: str) -> str:
    if kind == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "handover.db")
        return f"sqlite:///{folder}/handover.db"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


def _demo(app: Flask) -> dict[str, str]:
    data = tomllib.loads((PROJECT_ROOT / "config" / "directory.example.toml").read_text())
    tokens = {}
    with app.app_context(), transaction() as session:
        directory.load_directory(session, data, now=now())
        for name, email in DEMO_USERS.items():
            user = directory.get_user_by_email(session, email)
            assert user is not None
            tokens[name] = directory.issue_token(session, user=user, now=now())
    return tokens


def _handovers(app: Flask, api: Api) -> list[str]:
    """A draft, a scheduled one, a delivered one, an acknowledged one and a returned one."""
    ids = [create(api, record_for()) for _ in range(5)]
    for handover_id in ids[2:]:
        submit_at(app, handover_id, MONDAY_10)
    assert tick(app, MONDAY_10).delivered == 3
    submit_at(app, ids[1], MONDAY_10)  # after the tick: stays scheduled
    acknowledged = api.post(
        f"/handovers/{ids[3]}/acknowledge", as_="social_worker", json_body=read_back()
    )
    returned = api.post(
        f"/handovers/{ids[4]}/return", as_="social_worker", json_body={"reason": "Not ours."}
    )
    assert (acknowledged.status_code, returned.status_code) == (200, 200)
    return ids


def _pools(app: Flask, api: Api) -> dict[str, list[str]]:
    """Real ids and codes by the path they fit; the admin's own tokens are spared."""
    users = api.get("/admin/users", as_="admin").get_json()["users"]
    tokens = [
        token["id"]
        for user in users
        if user["role"] != "admin"
        for token in api.get(f"/admin/users/{user['id']}/tokens", as_="admin").get_json()["tokens"]
    ]
    teams = [team["code"] for team in api.get("/admin/teams", as_="admin").get_json()["teams"]]
    authorities = api.get("/admin/local-authorities", as_="admin").get_json()
    return {
        "/handovers/": _handovers(app, api),
        "/admin/teams/": teams,
        "/teams/": teams,
        "/admin/local-authorities/": [la["code"] for la in authorities["local_authorities"]],
        "/admin/users/": [user["id"] for user in users],
        "/admin/tokens/": tokens,
    }


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_database(request: pytest.FixtureRequest) -> str:
    """The kind of database the roles fuzz."""
    return str(request.param)


@pytest.fixture(scope="module", params=ROLES)
def world(
    request: pytest.FixtureRequest,
    fuzz_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    keyring: crypto.Keyring,
) -> Iterator[World]:
    """A fresh database for one role, served as the target while its operations are fuzzed."""
    folder = tmp_path_factory.mktemp("fuzz")
    settings = {
        "INSTANCE_PATH": str(folder),
        "DATABASE_URL": _database(request, folder, fuzz_database),
        "KEYRING": keyring.to_json(),
        "MAIL_PORT": _closed_port(),  # notifications stay in the outbox
        "MAIL_TIMEOUT_SECONDS": 2,
    }
    app = create_app(settings)
    tokens = _demo(app)
    pools = _pools(app, Api(app.test_client(), tokens))
    TARGET.app = app
    yield World(role=str(request.param), token=tokens[str(request.param)], pools=pools)
    app.extensions["handover.engine"].dispose()


def _aim(case: Any, world: World) -> None:
    """Swap three in four generated path ids for real ones (never in a case meant to be invalid)."""
    generated = case.path_parameters.get("id") if case.path_parameters else None
    if generated is None or case.meta.is_negative_at(ParameterLocation.PATH):
        return
    pool = next((ids for prefix, ids in world.pools.items() if case.path.startswith(prefix)), [])
    choice = zlib.crc32(str(generated).encode())  # from the generated value: repeatable
    if pool and choice % 4:
        case.path_parameters["id"] = pool[choice % len(pool)]


@pytest.fixture
def generated(record_property: Any) -> Iterator[list[int]]:
    """Counts the requests generated for one operation; conftest.py adds them up."""
    count = [0]
    yield count
    record_property("generated_requests", count[0])


@schema.parametrize()
def test_api(case: Any, world: World, generated: list[int]) -> None:
    """A documented status and body for every request, as a user of each role."""
    _aim(case, world)
    excluded = []
    purpose = str((case.headers or {}).get("X-Access-Purpose", "")).strip()
    if world.role == "police_officer" and not purpose:
        excluded.append(positive_data_acceptance)  # police must state a purpose: 400 without
    generated[0] += 1
    case.call_and_validate(
        headers={"Authorization": f"Bearer {world.token}"}, excluded_checks=excluded
    )
