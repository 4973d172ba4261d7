"""The create benchmark's baseline: a bare Flask + SQLAlchemy app that stores the JSON as it comes.

No authentication, validation, encryption, audit, linking or logging: one ORM insert of the
request body per ``POST /api/v1/handovers``, committed, answered 201 with the new id. It uses
``handover.db.make_engine``, so its SQLite runs with exactly the service's settings (WAL,
``synchronous=FULL``, busy timeout, ``BEGIN IMMEDIATE``), and gunicorn serves it with the
service's own ``gunicorn.conf.py``: ``gunicorn 'bench.baseline_app:create_app()'``, with the
database in ``BENCH_BASELINE_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from handover.db import UTCDateTime, make_engine, new_id


class Base(DeclarativeBase):
    pass


class StoredHandover(Base):
    """The request body, as it came: unvalidated, unencrypted."""

    __tablename__ = "baseline_handover"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def create_schema(url: str) -> None:
    """Create the one table (before gunicorn starts, so that workers never race to do it)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def create_app(url: str | None = None) -> Flask:
    """The baseline app on ``url`` (default: ``BENCH_BASELINE_DATABASE_URL``)."""
    app = Flask(__name__)
    factory = sessionmaker(bind=make_engine(url or os.environ["BENCH_BASELINE_DATABASE_URL"]))

    @app.post("/api/v1/handovers")
    def create_handover() -> ResponseReturnValue:
        payload = request.get_json()
        handover_id = new_id()
        with factory() as session, session.begin():
            session.add(
                StoredHandover(
                    id=handover_id, body=json.dumps(payload), created_at=datetime.now(UTC)
                )
            )
        return jsonify({"id": handover_id, "status": "draft"}), 201

    return app
