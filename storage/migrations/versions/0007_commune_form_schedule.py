"""commune_form.schedule: the schedule entries kept in the database, so the running bot adds periods itself;
period.series: the schedule rule a period comes from ("the previous period" is the previous of the same rule);
period.upward_due_at / upward_to: when and to whom the commune's own report is due upward

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 06:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('commune_form', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule', sa.JSON(), nullable=True))
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('upward_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('upward_to', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('period', schema=None) as batch_op:
        batch_op.drop_column('upward_to')
        batch_op.drop_column('upward_due_at')
        batch_op.drop_column('series')
    with op.batch_alter_table('commune_form', schema=None) as batch_op:
        batch_op.drop_column('schedule')
