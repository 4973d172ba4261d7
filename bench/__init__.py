"""Benchmarks (DESIGN §12), run by `make bench`: each prints its baseline beside its figure.

- ``bench.create``: ``POST /api/v1/handovers`` throughput over a bare Flask + SQLAlchemy app;
- ``bench.sweep``: 10,000 due handovers delivered by ticks, on SQLite and PostgreSQL;
- ``bench.link_lookup``: the median linked-handover lookup at 100k records over 1k;
- ``bench.rewrap``: data keys re-wrapped per second.

``python -m bench`` runs them all and ends with one summary line per figure.
"""
