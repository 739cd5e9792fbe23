"""commune.report: who issues and signs the commune's Word report, and its recipients (setup file `report:`)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('commune', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('commune', schema=None) as batch_op:
        batch_op.drop_column('report')
