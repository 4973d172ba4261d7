"""Every page the app serves, in a real browser, for every role.

Each role starts where it lands and follows every link it is shown (the menu, buttons that are
links, list rows, change links), visiting one page of each kind: every editor section and item
page, every admin page, every day-team page. Each page must answer 200 with the security
headers, carry no inline code, and pass axe (WCAG 2.2 A and AA) at desktop and mobile widths.
The few pages that only a form leads to are visited by address. A guard keeps this in step with
``app.url_map``: a new page fails it until it is listed here, so no page escapes the checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Page
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from handover.records.editor_pages import LIST_SECTIONS, ORDER
from tests.browser.conftest import LiveServer
from tests.browser.helpers import (
    DESKTOP,
    MOBILE,
    assert_accessible,
    assert_no_inline_code,
    assert_security_headers,
    sign_in,
)
from tests.browser.test_day_team_journey import Filed, _acknowledged, file_and_deliver
from tests.conftest import reference_record

# Answers that are not pages: assets, probes, and the single sign-on redirects (test_layout.py
# signs in through a provider and checks the pages on either side).
NOT_PAGES = {
    "static",
    "ops.healthz",
    "ops.readyz",
    "metrics.scrape",
    "auth.oidc_start",
    "auth.oidc_callback",
}
# Pages a form leads to, checked by the journey named (they need that form's state).
ELSEWHERE = {
    "auth.totp_sign_in": "test_layout.py::test_sign_in_with_an_authenticator_app",
}
ADMIN_PAGES = {
    "directory_ui.home",
    "directory_ui.authorities",
    "directory_ui.authority_new",
    "directory_ui.authority_edit",
    "directory_ui.teams",
    "directory_ui.team_new",
    "directory_ui.team",
    "directory_ui.team_edit",
    "directory_ui.escalation_policies",
    "directory_ui.escalation_edit",
    "directory_ui.webhook_list",
    "directory_ui.webhook_edit",
    "directory_ui.users",
    "directory_ui.user_new",
    "directory_ui.user_edit",
    "directory_ui.user_deactivate_confirm",
}
# What following links must reach, by role (every role also reaches its account page).
REACHED: dict[str, set[str]] = {
    "signed_out": {"auth.sign_in"},
    "auditor": {"auth.home"},
    "edt_worker": {
        "editor.home",
        "editor.new",
        "editor.task_list",
        "editor.section",
        "editor.item",
        "editor.remove",
        "editor.check",
        "editor.addendum",
        "records_ui.view",
        "delivery_ui.messages",
    },
    "edt_manager": {
        "editor.home",
        "records_ui.view",
        "delivery_ui.withdraw",
        "delivery_ui.reroute",
        "reports.overview",
        "reports.timeliness",
    },
    "social_worker": {
        "delivery_ui.inbox",
        "records_ui.view",
        "delivery_ui.acknowledge",
        "delivery_ui.return_",
        "delivery_ui.close",
        "delivery_ui.messages",
    },
    "team_manager": {"delivery_ui.inbox", "reports.overview", "delivery_ui.reroute"},
    "police_officer": {"records_ui.police_list", "records_ui.view"},
    "admin": ADMIN_PAGES | {"reports.timeliness"},
}
# Reached only after a form (submit, add an addendum): visited by address, as EDT.
DIRECT = {
    "editor.submitted": "/handovers/{delivered}/submitted",
    "editor.addendum_added": "/handovers/{delivered}/addenda/2",
}


def html_pages(app: Flask) -> set[str]:
    """Every endpoint answering GET outside the API."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.rule.startswith("/api/")
    }


def test_every_page_of_the_app_is_checked_here(app: Flask) -> None:
    """The guard: url_map's pages are exactly those crawled, visited directly or elsewhere."""
    covered = set().union(*REACHED.values(), DIRECT, ELSEWHERE, {"auth.totp_enrol"})
    assert html_pages(app) - NOT_PAGES == covered


def kind_of(app: Flask, url: str) -> tuple[str, str, str] | None:
    """The kind of page at ``url``: endpoint, editor section and item ("new" or "one")."""
    parts = urlsplit(url)
    if parts.path.startswith("/api/"):
        return None
    try:
        endpoint, args = app.url_map.bind("127.0.0.1").match(parts.path, method="GET")
    except (HTTPException, RequestRedirect):
        return None
    if endpoint in NOT_PAGES:
        return None
    if endpoint == "records_ui.view":  # each handover: what a record offers depends on its state
        return endpoint, args["handover_id"], ""
    item = args.get("item")
    return (
        endpoint,
        args.get("section", ""),
        "" if item is None else ("new" if item == "new" else "one"),
    )


class Crawl:
    """Visits pages and follows their links, checking one page of each kind."""

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page, self.server = page, server
        self.seen: dict[tuple[str, str, str], str] = {}
        self.downloads: set[str] = set()
        self.problems: list[str] = []

    def run(self, *starts: str) -> None:
        queue = list(starts)
        while queue:
            url = queue.pop(0)
            kind = kind_of(self.server.app, url)
            if kind is None or kind in self.seen:
                continue
            queue.extend(self.visit(url))

    def visit(self, url: str) -> list[str]:
        response = self.page.goto(url)
        kind = kind_of(self.server.app, self.page.url)  # after any redirect
        if kind is None or (kind in self.seen and self.page.url != url):
            return []
        self.seen[kind] = self.page.url
        assert response is not None
        if response.status != 200:
            self.problems.append(f"{response.status} for {self.page.url}")
            return []
        assert_security_headers(response)
        assert_no_inline_code(response.text(), where=self.page.url)
        for size in (DESKTOP, MOBILE):
            self.page.set_viewport_size(size)
            try:
                assert_accessible(self.page)
            except AssertionError as failure:
                self.problems.append(f"at {size['width']} wide: {failure}")
        self.page.set_viewport_size(DESKTOP)
        return self.links()

    def links(self) -> list[str]:
        hrefs: list[str] = self.page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        found = []
        for href in hrefs:
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != self.server.url:
                continue
            local = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.path.startswith("/api/v1/handovers/") and "/export" in parts.path:
                self.downloads.add(local)
            found.append(local)
        return found

    def endpoints(self) -> set[str]:
        return {endpoint for endpoint, _, _ in self.seen}

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def world(live_server: LiveServer) -> Iterator[dict[str, Any]]:
    """Handovers in every state a page needs: a full draft, delivered (with an addendum),
    acknowledged, and returned."""
    api = live_server.api
    draft = api.post("/handovers", as_="edt_worker", json_body=reference_record())
    assert draft.status_code == 201
    delivered, acknowledged, returned = (file_and_deliver(live_server) for _ in range(3))
    note = {"note": "Grandmother's phone number added.", "changes": {"contingency": "Call 999."}}
    added = api.post(f"/handovers/{delivered.id}/addenda", as_="edt_worker", json_body=note)
    assert added.status_code == 201, added.get_json()
    _acknowledged(live_server, acknowledged)
    back = {"reason": "The family lives in the MASH area."}
    assert api.post(f"/handovers/{returned.id}/return", as_="social_worker", json_body=back)
    yield {"draft": draft.get_json()["id"], "delivered": delivered, "returned": returned}


def _crawl(page: Page, server: LiveServer, role: str) -> Crawl:
    crawl = Crawl(page, server)
    if role == "signed_out":
        crawl.run("/sign-in")
    else:
        sign_in(page, role)
        crawl.run("/")
    return crawl


@pytest.mark.parametrize("role", ["signed_out", "auditor", "admin"])
def test_every_page_without_handovers(page: Page, live_server: LiveServer, role: str) -> None:
    crawl = _crawl(page, live_server, role)
    crawl.assert_clean()
    expected = REACHED[role] | ({"auth.totp_enrol"} if role != "signed_out" else set())
    assert expected <= crawl.endpoints(), expected - crawl.endpoints()


@pytest.mark.parametrize(
    "role", ["edt_worker", "edt_manager", "social_worker", "team_manager", "police_officer"]
)
def test_every_page_with_handovers(
    page: Page, live_server: LiveServer, world: dict[str, Any], role: str
) -> None:
    crawl = _crawl(page, live_server, role)
    if role == "edt_worker":
        delivered: Filed = world["delivered"]
        for path in DIRECT.values():
            crawl.run(path.format(delivered=delivered.id))
    crawl.assert_clean()
    expected = (
        REACHED[role] | {"auth.totp_enrol"} | (set(DIRECT) if role == "edt_worker" else set())
    )
    assert expected <= crawl.endpoints(), expected - crawl.endpoints()
    if role == "edt_worker":  # every section page, and both item pages of every list
        sections = {section for endpoint, section, _ in crawl.seen if endpoint == "editor.section"}
        assert sections == set(ORDER), set(ORDER) - sections
        items = {
            (section, item) for endpoint, section, item in crawl.seen if endpoint == "editor.item"
        }
        wanted = {(s, i) for s in LIST_SECTIONS for i in ("new", "one")}
        wanted.discard(("safety_plans", "new"))  # a plan is added from its child's row
        assert items >= wanted, wanted - items
    if role == "social_worker":  # the export links of the record view download the record
        assert crawl.downloads, "no export link on the record view"
        for path in sorted(crawl.downloads):
            download = page.request.get(path)
            assert download.status == 200, path
            assert download.headers["content-type"].startswith(("text/csv", "application/json"))
