"""The web interface's shared parts: London dates, tags, macros, error pages, the phase banner."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from flask import Flask

from handover import create_app, crypto
from handover.ui import london, tag


@pytest.mark.parametrize(
    ("value", "style", "shown"),
    [
        (datetime(2026, 11, 28, 2, 10, tzinfo=UTC), "datetime", "28 November 2026 at 2:10am"),
        (datetime(2026, 7, 1, 8, 0, tzinfo=UTC), "datetime", "1 July 2026 at 9am"),  # BST
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "time", "12:59am"),  # an hour before BST
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "time", "2am"),  # the clocks go forward
        (datetime(2026, 6, 30, 23, 0, tzinfo=UTC), "datetime", "1 July 2026 at midnight"),
        (datetime(2026, 12, 25, 12, 0, tzinfo=UTC), "time", "midday"),
        (datetime(2026, 12, 25, 15, 5, tzinfo=UTC), "short", "Fri 25 Dec, 3:05pm"),
        (datetime(2026, 6, 30, 23, 30, tzinfo=UTC), "date", "1 July 2026"),
        ("2026-11-28T02:10:00Z", "datetime", "28 November 2026 at 2:10am"),
        ("2026-07-30", "datetime", "30 July 2026"),
        (date(2026, 7, 30), "datetime", "30 July 2026"),
        (None, "datetime", ""),
    ],
)
def test_london_shows_times_as_people_in_england_read_them(
    value: datetime | date | str | None, style: str, shown: str
) -> None:
    assert london(value, style) == shown


def test_london_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError):
        london(datetime(2026, 11, 28, 2, 10))


def test_tags_name_known_values_and_show_unknown_ones_plainly() -> None:
    assert tag("urgency", "immediate") == {"text": "Immediate", "classes": "govuk-tag--red"}
    assert tag("status", "acknowledged") == {"text": "Acknowledged", "classes": "govuk-tag--green"}
    assert tag("status", "being_checked") == {"text": "Being checked", "classes": ""}
    assert tag("urgency", None) == {"text": "Not set", "classes": ""}


def test_shared_macros_render_tags_and_times(app: Flask) -> None:
    template = app.jinja_env.from_string(
        '{% from "_macros.html" import urgency_tag, status_tag, time %}'
        "{{ urgency_tag('priority') }}|{{ status_tag('draft') }}|{{ time(at) }}|{{ time(none) }}"
    )
    with app.test_request_context():
        out = template.render(at=datetime(2026, 11, 28, 2, 10, tzinfo=UTC))
    urgency, status, moment, empty = out.split("|")
    assert 'class="govuk-tag govuk-tag--orange"' in urgency and "Priority" in urgency
    assert 'class="govuk-tag govuk-tag--grey"' in status and "Draft" in status
    assert moment == '<time datetime="2026-11-28T02:10:00Z">28 November 2026 at 2:10am</time>'
    assert empty == "Not set"


def test_a_browser_gets_a_page_and_the_api_its_json_for_an_unknown_address(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<h1 class="govuk-heading-l">Page not found</h1>' in html
    assert "govuk-service-navigation" in html and page.headers["X-Frame-Options"] == "DENY"
    assert f"page reference {page.headers['X-Request-Id']}" in html
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["error"]["code"] == "not_found"
    wrong_method = client.put("/api/v1/openapi.json")
    assert wrong_method.status_code == 405 and wrong_method.is_json


def test_the_development_banner_is_not_shown_in_production(
    app: Flask, database_url: str, tmp_path: Path, keyring: crypto.Keyring
) -> None:
    assert "Development" in app.test_client().get("/sign-in").get_data(as_text=True)
    production = create_app(
        {
            "ENV": "production",
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "KEYRING": keyring.to_json(),
            "BASE_URL": "https://handover.test",
        }
    )
    page = production.test_client().get("/sign-in").get_data(as_text=True)
    production.extensions["handover.engine"].dispose()
    assert "govuk-phase-banner" not in page and "Development" not in page
    assert '<span class="govuk-service-navigation__service-name">' in page


def test_a_crash_shows_a_page_with_a_reference_and_no_detail(app: Flask) -> None:
    def crash() -> str:
        raise RuntimeError("secret detail from deep inside")

    app.add_url_rule("/crash", view_func=crash)
    app.add_url_rule("/api/v1/crash", endpoint="api_crash", view_func=crash)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    page = client.get("/crash")
    html = page.get_data(as_text=True)
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "Sorry, there is a problem with the service" in html
    assert page.headers["X-Request-Id"] in html and "secret detail" not in html
    api = client.get("/api/v1/crash")
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal_server_error"
