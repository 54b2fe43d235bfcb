"""reminder_schedules.quote: the weekly look back may quote one of the person's own kind
sentences of the week (asked when they opt in; false for every existing reminder)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reminder_schedules', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('quote', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('reminder_schedules', schema=None) as batch_op:
        batch_op.drop_column('quote')
