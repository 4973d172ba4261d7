"""Acknowledgement racing escalation: never both without the order showing, never an escalation
after an acknowledgement. Threads with their own connections, started together, many times."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask

from handover.db import transaction
from handover.delivery import service
from handover.directory import service as directory
from handover.records.models import Handover
from tests.conftest import DEMO_USERS, Api
from tests.delivery.conftest import (
    MONDAY_10,
    READ_BACK,
    create,
    event_kinds,
    handover_row,
    jobs,
    read_back,
    record_for,
    submit_at,
    tick,
)

ROUNDS = 15


def _acknowledge(app: Flask, handover_id: str, at: datetime) -> None:
    with app.app_context(), transaction() as session:
        user = directory.get_user_by_email(session, DEMO_USERS["social_worker"])
        handover = session.get(Handover, handover_id)
        assert user is not None and handover is not None
        service.acknowledge(
            session,
            user=user,
            handover=handover,
            synthesis=READ_BACK,
            responses=read_back()["actions"],
            now=at,
        )


def _together(*calls: Callable[[], object]) -> list[BaseException]:
    """Run the calls in threads released at the same moment; return what they raised."""
    barrier, errors = threading.Barrier(len(calls)), []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as error:  # collected and reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_acknowledgement_and_escalation_racing_keep_a_true_order(app: Flask, api: Api) -> None:
    # Handover i is delivered at 10:00 + i minutes, so its first level falls due at 10:30 + i
    # and a tick at that instant can escalate no other.
    ids = [create(api, record_for()) for _ in range(ROUNDS)]
    for i, handover_id in enumerate(ids):
        at = MONDAY_10 + timedelta(minutes=i)
        submit_at(app, handover_id, at)
        assert tick(app, at).delivered == 1

    orders: Counter[str] = Counter()
    for i, handover_id in enumerate(ids):
        due = MONDAY_10 + timedelta(minutes=30 + i)
        errors = _together(
            lambda due=due: tick(app, due),
            lambda handover_id=handover_id, due=due: _acknowledge(app, handover_id, due),
        )
        assert errors == []
        kinds = event_kinds(app, handover_id)
        orders[" then ".join(k for k in kinds if k in ("escalated", "acknowledged"))] += 1

    tick(app, MONDAY_10 + timedelta(days=1))  # whatever a busy tick left behind is cleaned up
    assert set(orders) <= {"acknowledged", "escalated then acknowledged"}, orders
    for handover_id in ids:
        kinds = event_kinds(app, handover_id)
        assert kinds.count("acknowledged") == 1
        assert kinds.count("escalated") <= 1
        assert kinds[-1] == "acknowledged"  # nothing escalated after it
        row = handover_row(app, handover_id)
        assert row.status == "acknowledged"
        assert row.escalation_level == kinds.count("escalated")
        states = jobs(app, handover_id)
        assert states["escalate:<id>:2"] == "cancelled"
        assert states["escalate:<id>:1"] == ("done" if "escalated" in kinds else "cancelled")
