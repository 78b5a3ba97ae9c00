"""embedding indexes record their index choice and what they were built from (stale check)

Revision ID: 0005_embedding_index_spec
Revises: 0004_review_answers
Create Date: 2026-12-02 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005_embedding_index_spec'
down_revision = '0004_review_answers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('embeddingindex', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spec_json', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('checkpoint_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('snapshot_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('embeddingindex', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('snapshot_sha256')
        batch_op.drop_column('checkpoint_sha256')
        batch_op.drop_column('spec_json')
