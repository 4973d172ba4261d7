"""partial indexes: what a draft leaves unset is not indexed

A draft has no police team, due time or acknowledgement deadline, and only a crime reference's
digest has a match group: their indexes now hold only the rows where the column is set, so that
creating a draft writes to none of them. Every query of these columns compares them, so it still
uses its index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PARTIAL = (
    ("handover", "police_team_code"),
    ("handover", "due_at"),
    ("handover", "ack_due_at"),
    ("link_digest", "match_id"),
)


def upgrade() -> None:
    for table, column in PARTIAL:
        name = f"ix_{table}_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for table, column in PARTIAL:
        name = f"ix_{table}_{column}"
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
