"""period_request (who asked for an ad hoc period), period_unit (the villages a period is limited to) and
pending_request (a police officer's /yeucau in progress)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('period_request',
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('by_person_id', sa.Integer(), nullable=True),
    sa.Column('by_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['by_person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['period_id'], ['period.id'], ),
    sa.PrimaryKeyConstraint('period_id')
    )
    op.create_table('period_unit',
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['period_id'], ['period.id'], ),
    sa.ForeignKeyConstraint(['village_id'], ['village.id'], ),
    sa.PrimaryKeyConstraint('period_id', 'village_id')
    )
    op.create_table('pending_request',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('commune_id', sa.Integer(), nullable=True),
    sa.Column('province', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('form_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('village_ids', sa.JSON(), nullable=True),
    sa.Column('page', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['commune_id'], ['commune.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('person_id')
    )


def downgrade() -> None:
    op.drop_table('pending_request')
    op.drop_table('period_unit')
    op.drop_table('period_request')
