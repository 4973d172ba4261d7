"""Operations: structured logs with request ids, health and readiness, Prometheus metrics.

``init_app`` comes first in create_app, so that every later start-up line is formatted and every
request gets its id and start time before any other hook can answer it.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from handover.ops import logging as ops_logging


def _begin_request() -> None:
    """Give the request its id and note when it started."""
    g.request_started = time.perf_counter()
    ops_logging.request_id()


def _finish_request(response: Response) -> Response:
    """Echo the request id, count the request and write its access line."""
    from handover.ops import metrics  # imports the models: not wanted by gunicorn.conf.py

    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    endpoint = request.endpoint or "unmatched"
    response.headers[ops_logging.REQUEST_ID_HEADER] = ops_logging.request_id()
    metrics.observe(endpoint=endpoint, status=response.status_code, seconds=seconds)
    ops_logging.log_request(
        status=response.status_code, endpoint=endpoint, duration_ms=round(seconds * 1000, 3)
    )
    return response


def init_app(app: Flask) -> None:
    """Configure logging, then the request hooks, /metrics, /healthz and /readyz."""
    from handover.ops import health, metrics

    ops_logging.configure(app)
    app.before_request(_begin_request)
    app.after_request(_finish_request)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
