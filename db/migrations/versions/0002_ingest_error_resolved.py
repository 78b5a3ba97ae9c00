"""ingest errors say which study they are about and when a later run resolved them

Revision ID: 0002_ingest_error_resolved
Revises: 0001
Create Date: 2026-12-01 08:49:19.324628
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002_ingest_error_resolved'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingesterror', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ingesterror_subject_key'), ['subject_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ingesterror', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingesterror_subject_key'))
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('subject_key')
