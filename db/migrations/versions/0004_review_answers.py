"""blind double review: each reviewer's own answers, each report's settlement; count indexes

Revision ID: 0004_review_answers
Revises: 0003_reviewer_auth
Create Date: 2026-12-01 08:41:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql


revision = '0004_review_answers'
down_revision = '0003_reviewer_auth'
branch_labels = None
depends_on = None


def _existing_enum(name: str, *values: str) -> sa.Enum:
    """An enum type 0001 already created: PostgreSQL must not CREATE TYPE it again."""
    return sa.Enum(*values, name=name).with_variant(
        postgresql.ENUM(*values, name=name, create_type=False), 'postgresql')


def upgrade() -> None:
    op.create_table('settlement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('how', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('answer_reviewer_id', sa.Integer(), nullable=True),
    sa.Column('adjudicator_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['adjudicator_id'], ['reviewer.id'], ),
    sa.ForeignKeyConstraint(['answer_reviewer_id'], ['reviewer.id'], ),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('report_id')
    )
    with op.batch_alter_table('settlement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_updated_at'), ['updated_at'], unique=False)

    op.create_table('reviewanswer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('status', _existing_enum('findingstatus', 'proposed', 'accepted', 'edited', 'rejected', 'added'), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('presence', _existing_enum('presence', 'present', 'absent', 'uncertain'), nullable=False),
    sa.Column('severity', _existing_enum('severity', 'mild', 'moderate', 'severe'), nullable=True),
    sa.Column('side', _existing_enum('side', 'left', 'right', 'bilateral'), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('evidence_start', sa.Integer(), nullable=True),
    sa.Column('evidence_end', sa.Integer(), nullable=True),
    sa.Column('evidence_text', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['finding.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('finding_id', 'reviewer_id')
    )
    with op.batch_alter_table('reviewanswer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviewanswer_finding_id'), ['finding_id'], unique=False)
        batch_op.create_index('ix_reviewanswer_report_reviewer', ['report_id', 'reviewer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviewanswer_reviewer_id'), ['reviewer_id'], unique=False)

    # covering indexes for the Data page's counts at 500k findings
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.create_index('ix_finding_category_presence', ['category', 'presence'], unique=False)
        batch_op.create_index('ix_finding_extractor_presence', ['extractor', 'extractor_version', 'presence'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_index('ix_finding_extractor_presence')
        batch_op.drop_index('ix_finding_category_presence')
    op.drop_table('reviewanswer')
    op.drop_table('settlement')
