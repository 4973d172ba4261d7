"""The load scenario: EDT workers file handovers, the day team acknowledges what is delivered.

Run by ``bench/load/run.py`` (``make load``), which starts gunicorn and the ticking scheduler and
passes the API tokens in HANDOVER_LOAD_TOKENS (JSON: {"edt": [...], "team": [...]}). Every request
goes to the --host given, a server on 127.0.0.1.

- An EDT worker files the reference handover (tests/fixtures/reference-handover.json), then
  submits it: ``POST /handovers`` then ``POST /handovers/{id}/submit``.
- A member of the allocated day team reads the team inbox, opens a delivered handover and
  acknowledges it with a read-back answering every action. Two members may pick the same one:
  the second is told 409 (already acknowledged), which is the right answer, not an error.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

from locust import HttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import read_back, reference  # noqa: E402  (beside this file, not a package)

TEAM = "northvale-east-fst"
TOKENS: dict[str, list[str]] = json.loads(os.environ.get("HANDOVER_LOAD_TOKENS", "{}"))
RECORD = reference()
READ_BACK = read_back(RECORD)


def _bearer(kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {random.choice(TOKENS[kind])}"}


class EdtWorker(HttpUser):
    """Files the reference handover and submits it."""

    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        """Sign in with one of the EDT tokens."""
        self.client.headers.update(_bearer("edt"))

    @task
    def file_and_submit(self) -> None:
        """Create a draft from the reference record, then submit it."""
        with self.client.post(
            "/api/v1/handovers", json=RECORD, name="POST /handovers", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"create: {response.status_code}")
                return
            handover_id = response.json()["id"]
        self.client.post(
            f"/api/v1/handovers/{handover_id}/submit", name="POST /handovers/{id}/submit"
        )


class DayTeam(HttpUser):
    """Reads the inbox, opens a delivered handover and acknowledges it."""

    weight = 1
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        """Sign in with one of the day team's tokens."""
        self.client.headers.update(_bearer("team"))

    @task
    def acknowledge_one(self) -> None:
        """Acknowledge one delivered handover, if the inbox has any."""
        inbox = self.client.get(
            f"/api/v1/teams/{TEAM}/inbox?limit=25", name="GET /teams/{code}/inbox"
        )
        if inbox.status_code != 200:
            return
        waiting = [item for item in inbox.json()["handovers"] if item["status"] == "delivered"]
        if not waiting:
            return
        handover_id = random.choice(waiting)["id"]
        self.client.get(f"/api/v1/handovers/{handover_id}", name="GET /handovers/{id}")
        with self.client.post(
            f"/api/v1/handovers/{handover_id}/acknowledge",
            json=READ_BACK,
            name="POST /handovers/{id}/acknowledge",
            catch_response=True,
        ) as response:
            if response.status_code == 409:
                response.success()  # a colleague acknowledged it first
