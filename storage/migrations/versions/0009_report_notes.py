"""report_note (an officer's own "Đánh giá chung" / "Phương hướng" of a period's Word report) and pending_note
(an officer about to type one)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_note',
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('part', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=3000), nullable=False),
    sa.Column('by_person_id', sa.Integer(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['by_person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['period_id'], ['period.id'], ),
    sa.PrimaryKeyConstraint('period_id', 'part')
    )
    op.create_table('pending_note',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('part', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['period_id'], ['period.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('person_id')
    )


def downgrade() -> None:
    op.drop_table('pending_note')
    op.drop_table('report_note')
