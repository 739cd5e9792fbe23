"""period.reporter: "police" for a report the commune police write themselves (`reporter: police` of a
schedule: no unit takes part, reminders go to the police chats); NULL for the units' reports

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reporter', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.drop_column('reporter')
