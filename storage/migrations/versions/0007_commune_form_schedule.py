"""commune_form.schedule: the schedule entry kept in the database, so the running bot adds periods itself

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('commune_form', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('commune_form', schema=None) as batch_op:
        batch_op.drop_column('schedule')
