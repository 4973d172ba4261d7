"""Rewrap: data keys re-wrapped per second, as `flask keys rewrap` does it after a KEK rotation.

20,000 synthetic records are stored under one KEK; a new KEK becomes active; then batches of
``REWRAP_BATCH_SIZE`` (500) run through ``records.storage.rewrap_batch``, one transaction each,
until none is left: the figure is records over wall time. Beside it, the baseline: the same
20,000 keys unwrapped and wrapped again in memory only (``crypto.rewrap_dek``), the ceiling
any storage can reach. Target: at least 10,000 per second on SQLite. PostgreSQL, when a server
answers, is shown beside it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import common, synth
from handover import crypto
from handover.db import transaction
from handover.records import storage
from handover.records.models import Handover

RECORDS = 20_000
TARGET = 10_000
END = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def _draft(record: Any, at: datetime, rng: Any) -> synth.Filing:
    return synth.Filing(status="draft", created_at=at)


def run(kind: str, server_url: str | None) -> dict[str, Any]:
    """Store the records on a fresh database of ``kind``, rotate, and time the rewrap."""
    keyring = crypto.generate_keyring()
    with (
        tempfile.TemporaryDirectory() as tmp,
        common.fresh_database(kind, Path(tmp), server_url) as url,
    ):
        app = common.make_app(url, Path(tmp), keyring)
        common.load_directory(app)
        synth.populate(
            app,
            keyring=keyring,
            count=RECORDS,
            seed=7,
            start=END - timedelta(days=365),
            end=END,
            filing=_draft,
        )
        rotated, new_kek = keyring.with_new_kek()
        batch = int(app.config["REWRAP_BATCH_SIZE"])
        with app.app_context():
            crypto.set_keyring(app, rotated)
            started, total, batches = time.perf_counter(), 0, 0
            while True:
                with transaction() as session:
                    changed = storage.rewrap_batch(session, keyring=rotated, batch_size=batch)
                if changed == 0:
                    break
                total, batches = total + changed, batches + 1
            seconds = time.perf_counter() - started
            _check(rotated, new_kek)
        app.extensions["handover.engine"].dispose()
    return {"records": total, "batches": batches, "seconds": seconds, "per_second": total / seconds}


def _check(keyring: crypto.Keyring, new_kek: str) -> None:
    """Every key is now under the new KEK and still opens its record."""
    with transaction() as session:
        assert storage.key_status(session) == {new_kek: RECORDS}, storage.key_status(session)
        sample = session.scalars(sa.select(Handover).order_by(Handover.id).limit(50)).all()
        for handover in sample:
            assert storage.read_sections(session, handover, ["summary"])["summary"]


def baseline() -> dict[str, Any]:
    """The same number of keys re-wrapped in memory only: the crypto alone."""
    keyring = crypto.generate_keyring()
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(RECORDS)]
    wrapped = [crypto.wrap_dek(keyring, crypto.new_dek(), record_id=i) for i in ids]
    rotated, _ = keyring.with_new_kek()
    started = time.perf_counter()
    for record_id, blob in zip(ids, wrapped, strict=True):
        crypto.rewrap_dek(rotated, blob, record_id=record_id)
    seconds = time.perf_counter() - started
    return {"records": RECORDS, "seconds": seconds, "per_second": RECORDS / seconds}


def main() -> int:
    """Print the baseline and each database's rate; the summary line last."""
    ceiling = baseline()
    print(f"rewrap baseline (crypto only, in memory): {ceiling['per_second']:,.0f}/s")
    sqlite = run("sqlite", None)
    print(
        f"rewrap sqlite: {sqlite['records']:,} keys in {sqlite['batches']} batches, "
        f"{sqlite['seconds']:.2f} s = {sqlite['per_second']:,.0f}/s "
        f"({sqlite['per_second'] / ceiling['per_second']:.0%} of the crypto-only baseline)"
    )
    result = {"baseline": ceiling, "sqlite": sqlite}
    server = common.postgres_server_url()
    if server is None:
        print("rewrap postgres: skipped (no PostgreSQL server answers)")
    else:
        postgres = run("postgres", server)
        result["postgres"] = postgres
        verdict = "meets" if postgres["per_second"] >= TARGET else "misses"
        print(
            f"rewrap postgres: {postgres['records']:,} keys in {postgres['batches']} batches, "
            f"{postgres['seconds']:.2f} s = {postgres['per_second']:,.0f}/s "
            f"({verdict} the {TARGET:,}/s target; the summary figure is SQLite's)"
        )
    common.save_result("rewrap", result)
    print(common.summary("rewrap", "per_second", sqlite["per_second"], ">=", TARGET, 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
