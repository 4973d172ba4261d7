"""linking: blind-index digests of record identifiers, and exact crime-reference matches

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_match",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_match")),
    )
    with op.batch_alter_table("link_match", schema=None) as batch_op:
        batch_op.create_index("ix_link_match_kind_digest", ["kind", "digest"], unique=False)

    op.create_table(
        "link_digest",
        sa.Column("handover_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("match_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["handover_id"], ["handover.id"], name=op.f("fk_link_digest_handover_id_handover")
        ),
        sa.ForeignKeyConstraint(
            ["match_id"], ["link_match.id"], name=op.f("fk_link_digest_match_id_link_match")
        ),
        sa.PrimaryKeyConstraint("handover_id", "kind", "digest", name=op.f("pk_link_digest")),
    )
    with op.batch_alter_table("link_digest", schema=None) as batch_op:
        batch_op.create_index("ix_link_digest_kind_digest", ["kind", "digest"], unique=False)
        batch_op.create_index(batch_op.f("ix_link_digest_match_id"), ["match_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_digest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_digest_match_id"))
        batch_op.drop_index("ix_link_digest_kind_digest")
    op.drop_table("link_digest")
    with op.batch_alter_table("link_match", schema=None) as batch_op:
        batch_op.drop_index("ix_link_match_kind_digest")
    op.drop_table("link_match")
