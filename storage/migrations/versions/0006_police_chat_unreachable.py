"""police_chat.unreachable_at and unreachable_error: a police chat Telegram refused (403)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 04:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('police_chat', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unreachable_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column('unreachable_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('police_chat', schema=None) as batch_op:
        batch_op.drop_column('unreachable_error')
        batch_op.drop_column('unreachable_at')
