"""listing move: a row once the listings are in the storage devices' databases

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('listing_move',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('done_at', sa.String(length=20), nullable=False),
    sa.Column('containers', sa.Integer(), nullable=False),
    sa.Column('objects', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('listing_move')
