"""outbox (replies kept from their step's commit until sent) and forgotten (a day of
salted hashes, so a late update cannot recreate a forgotten person)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.BigInteger(), nullable=False),
    sa.Column('payload_enc', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_user_seq', ['user_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_lease_until'), ['lease_until'], unique=False)

    op.create_table('forgotten',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('up_to_seq', sa.BigInteger(), nullable=True),
    sa.Column('forgotten_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('forgotten', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forgotten_forgotten_at'), ['forgotten_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('forgotten', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_forgotten_forgotten_at'))
    op.drop_table('forgotten')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_lease_until'))
        batch_op.drop_index('ix_outbox_user_seq')
    op.drop_table('outbox')
