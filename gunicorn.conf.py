"""gunicorn settings: `gunicorn wsgi:app`, run from the project root, reads this file by itself.

Environment (the application's own settings stay HANDOVER_*, see config/default.toml):

  GUNICORN_BIND        where to listen; default 127.0.0.1:8000, behind your TLS proxy
  GUNICORN_WORKERS     worker processes; default two per CPU core (4 on 2 cores). Each worker has
                       its own database pool of up to 20 PostgreSQL connections: keep workers x 20,
                       plus the scheduler and CLI, under the server's max_connections.
  GUNICORN_TIMEOUT     seconds a worker may be silent before it is replaced; default 30
  GUNICORN_ACCESS_LOG  "-" adds gunicorn's own access line on stdout. Off by default: the
                       application already writes one line per request (logger handover.access)
                       with its request id and user id.
  PROMETHEUS_MULTIPROC_DIR
                       a directory private to this service (e.g. /run/handover/metrics), set before
                       gunicorn starts. Each worker then writes its counters there and /metrics adds
                       up all workers; without it a scrape sees only the worker that answered. It is
                       emptied when gunicorn starts, and child_exit below tidies after each worker.

Every line gunicorn writes itself (start-up, worker exits, the optional access line) uses the
application's format (LOG_FORMAT: JSON in production) and never includes a query string.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gunicorn import glogging
from prometheus_client import multiprocess  # here, not in child_exit: that runs in a signal handler

from handover import config as handover_config
from handover.ops import logging as ops_logging

_settings = handover_config.load()

wsgi_app = "wsgi:app"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1)))
worker_class = "sync"
# Each worker imports wsgi.py itself, so each builds its engine (and pool) after the fork:
# connections are never shared between processes.
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = ops_logging.log_level(_settings).lower()
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"  # the heartbeat file: never on a slow or full disk


class HandoverLogger(glogging.Logger):
    """gunicorn's logger, writing in the application's format, the access line without query."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up as usual, then give them the application's formatter."""
        super().setup(cfg)
        formatter = ops_logging.make_formatter(ops_logging.log_format(_settings))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """One line per request: method, path (PATH_INFO, no query string), status, timing."""
        if not self.cfg.accesslog:
            return
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            resp.status_code,
            extra={
                "method": method,
                "path": path,
                "status": resp.status_code,
                "request_id": request_id,
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
            },
        )


logger_class = HandoverLogger

# Forget the handover modules imported above (the objects used here stay alive): every worker, and
# every worker after a reload (HUP), must import the code as it is on disk now, not the master's
# copy from when it started.
for _name in [name for name in sys.modules if name.partition(".")[0] == "handover"]:
    del sys.modules[_name]


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files of a previous run would be added to this one's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client that a worker has gone, so its live gauges are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
