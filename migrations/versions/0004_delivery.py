"""delivery: scheduled jobs, escalation policies, the query thread; delivery round and ladder

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import handover.db


revision = '0004'
down_revision = "0003"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('scheduled_job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('handover_id', sa.String(length=36), nullable=False),
    sa.Column('delivery_round', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=True),
    sa.Column('due_at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('fence', BIGINT, nullable=False),
    sa.Column('lease_until', handover.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', handover.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('transfer', 'escalate')", name=op.f('ck_scheduled_job_kind')),
    sa.CheckConstraint("state IN ('pending', 'done', 'cancelled', 'failed')", name=op.f('ck_scheduled_job_state')),
    sa.ForeignKeyConstraint(['handover_id'], ['handover.id'], name=op.f('fk_scheduled_job_handover_id_handover')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_job')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_scheduled_job_dedup_key'))
    )
    with op.batch_alter_table('scheduled_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_job_handover_id'), ['handover_id'], unique=False)
        batch_op.create_index('ix_scheduled_job_state_due_at', ['state', 'due_at'], unique=False)

    op.create_table('escalation_policy',
    sa.Column('team_code', sa.String(length=64), nullable=False),
    sa.Column('service_manager_email', sa.String(length=320), nullable=True),
    sa.Column('ladders', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['team_code'], ['team.code'], name=op.f('fk_escalation_policy_team_code_team')),
    sa.PrimaryKeyConstraint('team_code', name=op.f('pk_escalation_policy'))
    )

    op.create_table('handover_message',
    sa.Column('seq', BIGINT, autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('handover_id', sa.String(length=36), nullable=False),
    sa.Column('at', handover.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('author_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('in_reply_to_id', sa.String(length=36), nullable=True),
    sa.Column('resolves', sa.Boolean(), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('resolved_at', handover.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint("kind IN ('query', 'reply', 'note')", name=op.f('ck_handover_message_kind')),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_handover_message_author_id_user_account')),
    sa.ForeignKeyConstraint(['handover_id'], ['handover.id'], name=op.f('fk_handover_message_handover_id_handover')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['user_account.id'], name=op.f('fk_handover_message_resolved_by_id_user_account')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_handover_message')),
    sa.UniqueConstraint('id', name=op.f('uq_handover_message_id'))
    )
    with op.batch_alter_table('handover_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handover_message_handover_id'), ['handover_id'], unique=False)

    with op.batch_alter_table('handover', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_round', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('escalation_ladder', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handover', schema=None) as batch_op:
        batch_op.drop_column('escalation_ladder')
        batch_op.drop_column('delivery_round')

    with op.batch_alter_table('handover_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handover_message_handover_id'))
    op.drop_table('handover_message')
    op.drop_table('escalation_policy')
    with op.batch_alter_table('scheduled_job', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_job_state_due_at')
        batch_op.drop_index(batch_op.f('ix_scheduled_job_handover_id'))
    op.drop_table('scheduled_job')
