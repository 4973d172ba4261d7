"""Prometheus metrics at /metrics: HTTP traffic, and the service's backlog read at scrape time.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (before gunicorn starts) so
every worker's counters are added up at scrape time; without it each process has its own registry.
The database gauges are computed by the process answering the scrape, so they are never summed.

/metrics answers a caller presenting ``Authorization: Bearer <METRICS_TOKEN>``; with no token
configured, only a direct caller on the loopback interface (no proxy headers) is answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from handover import db, timeutil
from handover.audit import AuditHead
from handover.records.models import Handover

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

_EXTENSION = "handover.metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MIN_TOKEN_LENGTH = 16
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The request counter and latency histogram of one app."""

    def __init__(self) -> None:
        """Register both in a registry of the app's own, so apps (and tests) never collide."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "handover_http_requests",
            "HTTP requests answered, by Flask endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "handover_http_request_duration_seconds",
            "Time to answer an HTTP request, by Flask endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )


def observe(*, endpoint: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    metrics: HttpMetrics = current_app.extensions[_EXTENSION]
    metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
    metrics.latency.labels(endpoint=endpoint, status=str(status)).observe(seconds)


def _outbox_model() -> Any:
    """The outbox model, or None while the notifications package does not define it."""
    try:
        from handover.notifications.models import OutboxMessage
    except ImportError:
        return None
    return OutboxMessage


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class DatabaseCollector(Collector):
    """Gauges read from the database when scraped: the backlog an operator must notice."""

    def __init__(self, factory: sessionmaker[Session], now: datetime) -> None:
        """Read through ``factory`` as of ``now``."""
        self.factory, self.now = factory, now

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges, or handover_database_up 0 if the database cannot be read."""
        try:
            with self.factory() as session, session.begin():
                gauges = list(self._gauges(session))
        except sa.exc.SQLAlchemyError as error:
            logger.warning("metrics: database unreadable (%s)", type(error).__name__)
            yield _gauge("handover_database_up", "1 if the database answered the scrape.", 0)
            return
        yield _gauge("handover_database_up", "1 if the database answered the scrape.", 1)
        yield from gauges

    def _gauges(self, session: Session) -> Iterator[Metric]:
        due = session.scalar(
            sa.select(sa.func.count())
            .select_from(Handover)
            .where(Handover.status == "scheduled", Handover.due_at <= self.now)
        )
        yield _gauge(
            "handover_due_undelivered", "Handovers due for transfer but not delivered.", due or 0
        )
        oldest = session.scalar(
            sa.select(sa.func.min(Handover.delivered_at)).where(Handover.status == "delivered")
        )
        age = max((self.now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield _gauge(
            "handover_oldest_unacknowledged_age_seconds",
            "Seconds since the oldest delivered, unacknowledged handover was delivered (0: none).",
            age,
        )
        yield from self._outbox(session)
        head = session.scalar(sa.select(AuditHead.seq).where(AuditHead.chain == "main"))
        yield _gauge(
            "handover_audit_head_seq", "Sequence number of the audit chain head.", head or 0
        )

    def _outbox(self, session: Session) -> Iterator[Metric]:
        model = _outbox_model()
        if model is None:
            return
        counts: dict[str, int] = dict(
            session.execute(
                sa.select(model.state, sa.func.count())
                .where(model.state.in_(("pending", "dead")))
                .group_by(model.state)
            ).all()
        )
        yield _gauge(
            "handover_outbox_pending", "Notifications waiting to be sent.", counts.get("pending", 0)
        )
        yield _gauge(
            "handover_outbox_dead",
            "Notifications given up after every attempt (dead letters).",
            counts.get("dead", 0),
        )


def render() -> bytes:
    """The exposition text: HTTP metrics (of every worker in multiprocess mode) and the gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(current_app.extensions[_EXTENSION].registry)
    registry.register(DatabaseCollector(db.session_factory(), timeutil.now()))
    return generate_latest(registry)


def _is_direct_loopback() -> bool:
    """True for a caller on this host that no proxy relayed (a local proxy would be loopback)."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _refusal() -> Response | None:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return None
        return Response(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n",
            401,
            {"WWW-Authenticate": "Bearer"},
            mimetype="text/plain",
        )
    if _is_direct_loopback():
        return None
    return Response(
        "Metrics are served to loopback only; set METRICS_TOKEN to scrape from elsewhere.\n",
        403,
        mimetype="text/plain",
    )


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus exposition, to the token holder or (without a token) to loopback."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    response = Response(render(), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Check METRICS_TOKEN, create the app's metrics and serve /metrics."""
    token = app.config.get("METRICS_TOKEN") or ""
    if not isinstance(token, str) or (token and len(token) < MIN_TOKEN_LENGTH):
        raise RuntimeError(
            f"METRICS_TOKEN must be text of at least {MIN_TOKEN_LENGTH} characters, or empty"
        )
    app.extensions[_EXTENSION] = HttpMetrics()
    app.register_blueprint(bp)
