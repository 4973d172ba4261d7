"""The record the load scenario files, and the read-back that acknowledges it.

No locust import here: the runner imports this module too, and importing locust patches the
standard library for gevent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference-handover.json"


def _year_earlier(text: str) -> str:
    return f"{int(text[:4]) - 1}{text[4:]}"


def reference() -> dict[str, Any]:
    """The reference record with its children's dates a year earlier, so none is in the future."""
    record: dict[str, Any] = json.loads(FIXTURE.read_text())
    for child in record["children"]:
        for key in ("date_of_birth", "date_of_death"):
            if child.get(key):
                child[key] = _year_earlier(child[key])
    return record


def read_back(record: dict[str, Any]) -> dict[str, Any]:
    """An acknowledgement of ``record``: a synthesis, and every action accepted."""
    return {
        "synthesis": "Infant death at home; five siblings with grandmother under a safety plan; "
        "joint s47 and police investigation under way.",
        "actions": [{"ref": action["ref"], "response": "accepted"} for action in record["actions"]],
    }
