"""paid_broadcast_day: paid broadcast messages reserved per day, so the Stars cap survives restarts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paid_broadcast_day',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )


def downgrade() -> None:
    op.drop_table('paid_broadcast_day')
