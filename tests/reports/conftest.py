"""Fixtures of the report tests."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.reports.helpers import quiet_mail


@pytest.fixture
def no_mail(app: Flask) -> None:
    """Mail goes to a closed port, so ticks leave notifications queued instead of waiting."""
    quiet_mail(app)
