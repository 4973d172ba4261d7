"""Link lookup: the median linked-handover lookup at 100,000 records over the same at 1,000.

Each size gets its own SQLite database of synthetic records (``bench.synth``: families with one
to four handovers each, so a record has as many links at either size), filed over three years
and mostly closed by now. A Northvale social worker then opens the linked panel of ``SAMPLE``
records that have links, chosen at random: ``records.linking.find_links`` with the access
policy's clauses, as ``GET /handovers/{id}/linked`` calls it (candidates from the blind
indexes, each decrypted and compared exactly). The two sizes take turns, ``ROUNDS`` rounds of
``SAMPLE / ROUNDS`` lookups each, so that load from elsewhere on the machine falls on both. The
figure is the median time at 100k over the median at 1k. Target <= 1.5.
"""

from __future__ import annotations

import hashlib
import inspect
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import aliased

from bench import common, synth
from handover import crypto
from handover.auth import policy
from handover.config import PROJECT_ROOT
from handover.db import transaction
from handover.directory import service as directory
from handover.records import linking
from handover.records.models import Handover, LinkDigest

SIZES = (1_000, 100_000)
SEED = 23
CACHE = common.RESULTS / "cache"
# The code a kept database was written by: when any of it changes, the database is built again.
SOURCES = (
    "crypto.py",
    "records/linking.py",
    "records/models.py",
    "records/sections.py",
    "records/storage.py",
)
SAMPLE = 300
ROUNDS = 6  # the sizes take turns, so that a burst of load elsewhere falls on both
WARMUP = 30
TARGET = 1.5
END = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
STATUSES = ("draft", "scheduled", "delivered", "acknowledged", "closed")
WEIGHTS = (3, 2, 5, 25, 65)


def _filing(record: Any, at: datetime, rng: random.Random) -> synth.Filing:
    status = rng.choices(STATUSES, weights=WEIGHTS)[0]
    return synth.Filing(status=status, created_at=at, due_at=at + timedelta(hours=6))


def _linked_ids(app: Flask) -> list[str]:
    """Submitted records that share at least one identifier with another record."""
    mine, theirs = aliased(LinkDigest), aliased(LinkDigest)
    with app.app_context(), transaction() as session:
        return sorted(
            session.scalars(
                sa.select(mine.handover_id)
                .join(
                    theirs,
                    sa.and_(
                        theirs.kind == mine.kind,
                        theirs.digest == mine.digest,
                        theirs.handover_id != mine.handover_id,
                    ),
                )
                .join(Handover, Handover.id == mine.handover_id)
                .where(Handover.status != "draft")
                .distinct()
            )
        )


def _lookups(app: Flask, ids: list[str]) -> tuple[list[float], list[int]]:
    """Time ``find_links`` for each record, as the social worker; returns seconds and counts."""
    seconds, counts = [], []
    with app.app_context():
        with transaction() as session:
            reader = directory.get_user_by_email(session, common.SOCIAL_WORKER)
            assert reader is not None
            among, visible = (
                policy.clause(reader, policy.KNOW_OF),
                policy.clause(reader, policy.VIEW),
            )
        for handover_id in ids:
            with transaction() as session:
                handover = session.get(Handover, handover_id)
                assert handover is not None
                started = time.perf_counter()
                links = linking.find_links(session, handover, among=among, visible=visible)
                seconds.append(time.perf_counter() - started)
                counts.append(len(links))
    return seconds, counts


def _fingerprint(size: int) -> str:
    """What a built database depends on: its size, seed and filing, and the code that wrote it.

    Not this whole file: changing how it measures must not throw away a database that took
    minutes to build.
    """
    sources = [Path(synth.__file__)]
    sources += [PROJECT_ROOT / "handover" / name for name in SOURCES]
    sources += sorted((PROJECT_ROOT / "migrations" / "versions").glob("*.py"))
    filing = inspect.getsource(_filing)
    digest = hashlib.sha256(f"{size}:{SEED}:{STATUSES}:{WEIGHTS}:{END}:{filing}".encode())
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _database(size: int) -> tuple[Path, crypto.Keyring, float | None]:
    """A database of ``size`` records: built now (and kept), or kept from an earlier run.

    Building 100,000 records takes minutes, so the database and its (benchmark-only) keyring
    are kept under bench/results/cache and used again while the code that wrote them is the
    same. Returns the file, its keyring and the build time (None if it was kept).
    """
    folder = CACHE / f"links-{size}-{_fingerprint(size)}"
    if (folder / "ready").exists():
        return (
            folder / "handover.db",
            crypto.load_keyring(env_value=None, path=folder / "keys"),
            None,
        )
    for stale in CACHE.glob(f"links-{size}-*"):  # written by other code: never used again
        shutil.rmtree(stale, ignore_errors=True)
    folder.mkdir(parents=True)
    keyring = crypto.generate_keyring()
    crypto.save_keyring(keyring, folder / "keys")
    app = common.make_app(f"sqlite:///{folder}/handover.db", folder, keyring)
    common.load_directory(app)
    built = time.perf_counter()
    synth.populate(
        app,
        keyring=keyring,
        count=size,
        seed=SEED,
        start=END - timedelta(days=3 * 365),
        end=END,
        filing=_filing,
        chunk=5000,
    )
    took = time.perf_counter() - built
    app.extensions["handover.engine"].dispose()
    (folder / "ready").touch()
    return folder / "handover.db", keyring, took


@dataclass
class Size:
    """One database under test: its app, the records sampled and the lookups timed so far."""

    records: int
    path: Path
    app: Flask
    linked: int
    chosen: list[str]
    build_seconds: float | None
    seconds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def _open(size: int, folder: Path) -> Size:
    """The database of ``size`` records served by an app, with its sample chosen and warmed."""
    path, keyring, build_seconds = _database(size)
    folder.mkdir()
    app = common.make_app(f"sqlite:///{path}", folder, keyring)
    linked = _linked_ids(app)
    chosen = random.Random(5).sample(linked, min(len(linked), WARMUP + SAMPLE))
    _lookups(app, chosen[:WARMUP])
    return Size(size, path, app, len(linked), chosen[WARMUP:], build_seconds)


def _result(size: Size) -> dict[str, Any]:
    return {
        "records": size.records,
        "linked_records": size.linked,
        "lookups": len(size.seconds),
        "median_ms": common.median_ms(size.seconds),
        "p90_ms": statistics.quantiles(size.seconds, n=10)[-1] * 1000,
        "mean_links": statistics.mean(size.counts),
        "build_seconds": size.build_seconds,
        "database_mb": size.path.stat().st_size / 1e6,
    }


def run() -> dict[int, dict[str, Any]]:
    """Both sizes' lookups in alternating rounds, so that the machine's load falls on both."""
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [_open(records, Path(tmp) / str(records)) for records in SIZES]
        step = SAMPLE // ROUNDS
        for number in range(ROUNDS):
            for size in sizes if number % 2 == 0 else reversed(sizes):
                seconds, counts = _lookups(size.app, size.chosen[number * step :][:step])
                size.seconds += seconds
                size.counts += counts
        for size in sizes:
            size.app.extensions["handover.engine"].dispose()
        return {size.records: _result(size) for size in sizes}


def main() -> int:
    """Both sizes side by side; the summary line last."""
    results = run()
    for size, found in results.items():
        built = found["build_seconds"]
        origin = "kept from an earlier run" if built is None else f"built in {built:.0f} s"
        print(
            f"link lookup at {size:,} records ({found['database_mb']:,.0f} MB, {origin}): "
            f"median {found['median_ms']:.2f} ms, "
            f"p90 {found['p90_ms']:.2f} ms over {found['lookups']} lookups, "
            f"{found['mean_links']:.1f} links each on average",
            flush=True,
        )
    small, large = results[SIZES[0]], results[SIZES[-1]]
    ratio = large["median_ms"] / small["median_ms"]
    print(
        f"link lookup baseline ({SIZES[0]:,} records): {small['median_ms']:.2f} ms; "
        f"{SIZES[-1]:,} records: {large['median_ms']:.2f} ms; ratio {ratio:.2f}"
    )
    common.save_result("link_lookup", {"sizes": results, "ratio": ratio})
    print(common.summary("link-lookup", "ratio", ratio, "<=", TARGET, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
