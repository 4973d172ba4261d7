"""outbox of notifications and team webhooks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import handover.db


revision = '0005'
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_message',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('dedup_key', sa.String(length=512), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('target', sa.String(length=320), nullable=False),
    sa.Column('team_code', sa.String(length=64), nullable=True),
    sa.Column('handover_id', sa.String(length=36), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', handover.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', handover.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('delivered', 'escalated', 'returned', 'rerouted', 'withdrawn', 'acknowledged', 'query', 'alert', 'digest')", name=op.f('ck_outbox_message_kind')),
    sa.CheckConstraint("channel IN ('email', 'webhook')", name=op.f('ck_outbox_message_channel')),
    sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'dead')", name=op.f('ck_outbox_message_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_outbox_message_dedup_key')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_message_idempotency_key'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_handover_id'), ['handover_id'], unique=False)
        batch_op.create_index('ix_outbox_message_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)

    op.create_table('team_webhook',
    sa.Column('team_code', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('wrapped_dek', sa.LargeBinary(), nullable=False),
    sa.Column('kek_id', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_code'], ['team.code'], name=op.f('fk_team_webhook_team_code_team')),
    sa.PrimaryKeyConstraint('team_code', name=op.f('pk_team_webhook'))
    )


def downgrade() -> None:
    op.drop_table('team_webhook')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_message_state_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_message_handover_id'))

    op.drop_table('outbox_message')
