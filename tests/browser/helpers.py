"""What browser tests do to a page: sign in, check accessibility, take screenshots, read headers.

Typical use (templates/README.md has more): ``sign_in(page, "social_worker")``, then
``page.goto("/inbox")`` and ``check_page(page, "inbox")`` for axe (WCAG 2.2 A/AA) at desktop and
mobile widths and a screenshot at each.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handover.cli import DEMO_PASSWORD
from tests.conftest import DEMO_USERS

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

CHROMIUM = Path("/usr/bin/chromium")
# Headless Debian Chromium on a machine whose only network is loopback: nothing in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 375, "height": 667}
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = DEMO_PASSWORD  # every demo user's, as `make run` prints it
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def sign_in(page: Page, role: str, *, password: str = PASSWORD) -> None:
    """Sign in through the real form as the demo user of ``role`` (a key of DEMO_USERS)."""
    from playwright.sync_api import expect

    page.goto("/sign-in")
    page.get_by_label("Email address").fill(DEMO_USERS[role])
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
    expect(page.locator("form.app-sign-out")).to_have_count(1)


def assert_accessible(page: Page) -> None:
    """Run axe-core on the page as it is now (WCAG 2.2 A and AA); fail listing every violation."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    found = Axe().run(page, options=options).response["violations"]
    violations = [v for v in map(_without_known_govuk_issue, found) if v["nodes"]]
    assert not violations, f"axe found on {page.url}:\n" + "\n".join(map(_describe, violations))


def _without_known_govuk_issue(violation: dict[str, Any]) -> dict[str, Any]:
    """Drop GOV.UK Frontend's one documented axe finding, and only that: ``aria-expanded`` on a
    radio or checkbox that reveals a conditional question (alphagov/govuk-frontend#979, kept on
    purpose because screen readers announce it)."""
    if violation["id"] != "aria-allowed-attr":
        return violation
    nodes = [
        node
        for node in violation["nodes"]
        if not (
            re.search(r'class="govuk-(radios|checkboxes)__input"', node.get("html", ""))
            and re.fullmatch(
                r"Fix all of the following:\s+ARIA attribute is not allowed: "
                r'aria-expanded="(true|false)"',
                node.get("failureSummary", "").strip(),
            )
        )
    ]
    return {**violation, "nodes": nodes}


def _describe(violation: dict[str, Any]) -> str:
    nodes = "\n".join(
        f"    {' '.join(map(str, node['target']))}: {node.get('failureSummary', '')}"
        for node in violation["nodes"]
    )
    return f"  {violation['id']} ({violation['impact']}): {violation['help']}\n{nodes}"


def screenshot(page: Page, name: str) -> list[Path]:
    """Save full-page PNGs at desktop (1280) and mobile (375) widths as screenshots/NAME-*.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    saved = []
    for label, size in (("desktop", DESKTOP), ("mobile", MOBILE)):
        page.set_viewport_size(size)
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        saved.append(path)
    page.set_viewport_size(DESKTOP)
    return saved


def check_page(page: Page, name: str) -> None:
    """The checks every page gets: axe at desktop and mobile widths, and both screenshots."""
    for size in (DESKTOP, MOBILE):
        page.set_viewport_size(size)
        assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    screenshot(page, name)


def assert_security_headers(response: Response | None) -> None:
    """The HTML response locks the page down: strict CSP, no framing, no sniffing, no referrer."""
    assert response is not None
    headers = response.headers  # lower-case names
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert "frame-ancestors 'none'" in csp or headers.get("x-frame-options") == "DENY"
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"


def assert_no_inline_code(html: str, where: str = "the page") -> None:
    """The server's HTML has no inline script, style element or style attribute (CSP needs none)."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline <script> in {where}"
    assert not re.search(r"<style\b", html), f"<style> element in {where}"
    assert not re.search(r"<[^>]+\sstyle=", html), f"style= attribute in {where}"
    assert not re.search(r"<[^>]+\son[a-z]+=", html), f"inline event handler in {where}"


def focused(page: Page) -> dict[str, str]:
    """The element that has the keyboard focus: its tag, id and text."""
    result: dict[str, str] = page.evaluate(
        "() => { const e = document.activeElement;"
        " return {tag: e.tagName.toLowerCase(), id: e.id, text: e.textContent.trim()}; }"
    )
    return result


class Problems:
    """Collects what a person would see go wrong in the browser's console."""

    def __init__(self, page: Page) -> None:
        self.found: list[str] = []
        page.on("pageerror", lambda error: self.found.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request: Any) -> None:
        # A navigation cut short, or a script that nojs_page blocks on purpose, is no fault.
        if not request.failure.startswith(("net::ERR_ABORTED", "net::ERR_BLOCKED_BY_CLIENT")):
            self.found.append(f"request failed ({request.failure}): {request.url}")

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.found.append(f"CSP violation: {message.text}")

    def _response(self, response: Any) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            self.found.append(f"{response.status} for {response.url}")

    def assert_none(self) -> None:
        """Fail listing every problem seen."""
        assert not self.found, "the browser reported:\n" + "\n".join(self.found)
