"""reviewer sign-in: argon2 password hash, OIDC subject, disabled flag

Revision ID: 0003_reviewer_auth
Revises: 0002_ingest_error_resolved
Create Date: 2026-12-01 08:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003_reviewer_auth'
down_revision = '0002_ingest_error_resolved'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reviewer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        # existing reviewers (from the old name picker) stay enabled, without a password:
        # they cannot sign in until an admin sets one
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_unique_constraint('uq_reviewer_oidc_subject', ['oidc_subject'])


def downgrade() -> None:
    with op.batch_alter_table('reviewer', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reviewer_oidc_subject', type_='unique')
        batch_op.drop_column('disabled')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('password_hash')
