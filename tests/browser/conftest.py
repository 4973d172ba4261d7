"""Browser tests: the real app on 127.0.0.1, driven by Playwright in Debian's Chromium.

Fixtures:
- ``live_server``: the app served by werkzeug in a thread on a free loopback port, on its own
  SQLite database (a copy of the migrated template), with the demo directory loaded and every
  demo user's password set to ``PASSWORD``. ``live_server.url``, ``.app``, ``.tokens`` (API
  tokens by role, as the ``demo`` fixture gives them) and ``.api`` (an ``Api`` on the same
  database) let a test arrange data before it drives the pages.
- ``page``: a fresh browser context (no cookies) on that server at desktop size, with JavaScript;
  ``nojs_page`` the same without the site's scripts. Both fail the test at teardown if the page
  hit a Content-Security-Policy violation, a script error or a missing asset.

Every test in this folder is marked ``browser``. Without /usr/bin/chromium it is skipped, except
in CI (``CI`` set), where a missing browser fails. Playwright never downloads a browser here:
``playwright install`` is not used. The helpers (sign_in, assert_accessible, screenshot,
check_page, ...) are in tests/browser/helpers.py.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from handover import create_app, crypto
from handover.auth.passwords import hash_password
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.timeutil import now
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PASSWORD, Problems
from tests.conftest import DEMO_USERS, Api

HERE = Path(__file__).parent

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # the dev extras are not installed: the browser fixture says so
    sync_playwright = None


# Chromium may hang up while the live server's thread is still sending a static file; werkzeug's
# development server then drops the open file without closing it, and the ResourceWarning that
# garbage collection raises later would fail whichever test is running. Only that is ignored.
STATIC_FILE_LEFT_OPEN = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <_io.FileIO name='[^']*/handover/static/"
    ":pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``browser`` (select with -m browser, skip with -m 'not …')."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(STATIC_FILE_LEFT_OPEN)


@dataclass
class LiveServer:
    """The app served over real HTTP on 127.0.0.1."""

    app: Flask
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> Api:
        """A JSON API client on the same app and database, signed in per role with ``as_``."""
        return Api(self.app.test_client(), self.tokens)


@pytest.fixture(scope="session")
def demo_password_hash() -> str:
    """One hash of the demo password, shared: hashing is slow on purpose."""
    return hash_password(PASSWORD)


def _load_demo(app: Flask, password_hash: str) -> dict[str, str]:
    """The demo directory, every user with the demo password; returns API tokens by role."""
    data = tomllib.loads((PROJECT_ROOT / "config" / "directory.example.toml").read_text())
    tokens = {}
    with app.app_context(), transaction() as session:
        directory.load_directory(session, data, now=now())
        for entry in data["users"]:
            user = directory.get_user_by_email(session, entry["email"])
            assert user is not None
            user.password_hash = password_hash
        for role, email in DEMO_USERS.items():
            user = directory.get_user_by_email(session, email)
            assert user is not None
            tokens[role] = directory.issue_token(session, user=user, now=now())
    return tokens


@pytest.fixture
def live_server_config() -> dict[str, Any]:
    """Extra settings for the live server's app: a test module overrides this (single sign-on)."""
    return {}


@pytest.fixture
def live_server(
    sqlite_template: Path,
    keyring: crypto.Keyring,
    tmp_path: Path,
    demo_password_hash: str,
    live_server_config: dict[str, Any],
) -> Iterator[LiveServer]:
    """The app on a free loopback port, its own SQLite database, the demo directory loaded."""
    from werkzeug.serving import make_server

    shutil.copy(sqlite_template, tmp_path / "handover.db")
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path}/handover.db",
            "KEYRING": keyring.to_json(),
            "ENV": "development",
            "BASE_URL": "http://127.0.0.1",  # plain http: cookies without Secure, as `make run`
            "SCHEDULER_IN_PROCESS": False,
            **live_server_config,
        }
    )
    tokens = _load_demo(app, demo_password_hash)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=url, tokens=tokens)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        app.extensions["handover.engine"].dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once per test module with a fresh profile."""
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # launch() gives Chromium a new temporary --user-data-dir each time and deletes it after.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _context(browser: Browser, server: LiveServer, **options: Any) -> BrowserContext:
    return browser.new_context(
        base_url=server.url,
        viewport=DESKTOP,
        locale="en-GB",
        timezone_id="Europe/London",
        **options,
    )


def _watched(context: BrowserContext) -> Iterator[Page]:
    """A page of ``context`` whose CSP violations, script errors and broken assets fail the test."""
    page = context.new_page()
    problems = Problems(page)
    yield page
    context.close()
    problems.assert_none()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page in a fresh browser (no cookies), desktop size, JavaScript on."""
    yield from _watched(_context(browser, live_server))


@pytest.fixture
def nojs_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page in a fresh browser that never runs the site's scripts: every page must still work.

    The site's scripts are blocked rather than JavaScript switched off, so that axe (which the
    test injects) still runs; with no inline scripts allowed, that is exactly the page without JS.
    """
    context = _context(browser, live_server)
    context.route(re.compile(r"\.m?js(\?.*)?$"), lambda route: route.abort("blockedbyclient"))
    yield from _watched(context)
