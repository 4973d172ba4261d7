"""Adds up the requests the fuzzer generated, and fails a full run that generated too few.

Run as ``pytest tests/fuzz`` (``make test`` and ``make fuzz`` do), so that these hooks run in
the process that prints the summary, with or without xdist.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

FLOOR = 5_000  # generated requests a full run must reach, across all roles, per database
_KEY = pytest.StashKey[list[str]]()
_CASE = re.compile(r"test_schemathesis\.py::test_api\[.*\]\[(?P<role>[a-z_]+)-(?P<db>[a-z]+)\]$")


def _counts(session: pytest.Session) -> Counter[tuple[str, str]]:
    """Generated requests by (database, role), from the teardown reports of the fuzz tests."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    counts: Counter[tuple[str, str]] = Counter()
    for reports in getattr(reporter, "stats", {}).values():
        for report in reports:
            found = _CASE.search(getattr(report, "nodeid", ""))
            if found and getattr(report, "when", "") == "teardown":
                properties = dict(report.user_properties)
                counts[found["db"], found["role"]] += int(properties.get("generated_requests", 0))
    return counts


def _filtered(config: pytest.Config) -> bool:
    return bool(config.getoption("keyword") or config.getoption("markexpr"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Count; a full run that generated fewer than FLOOR requests on a database fails."""
    counts = _counts(session)
    if not counts:
        return
    lines = []
    for db in sorted({db for db, _ in counts}):
        roles = {role: n for (kind, role), n in sorted(counts.items()) if kind == db}
        total = sum(roles.values())
        detail = ", ".join(f"{role} {n}" for role, n in roles.items())
        lines.append(f"schemathesis on {db}: {total} generated requests ({detail})")
        if total < FLOOR and not _filtered(session.config) and exitstatus == 0:
            lines.append(f"FAILED: fewer than {FLOOR} generated requests on {db}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    session.config.stash[_KEY] = lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the counts at the end of the run."""
    for line in terminalreporter.config.stash.get(_KEY, []):
        terminalreporter.write_line(line)
