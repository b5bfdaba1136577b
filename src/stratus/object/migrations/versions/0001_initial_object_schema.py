"""initial object schema

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account',
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('put_timestamp', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('container',
    sa.Column('account', sa.String(length=256), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('policy', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=20), nullable=False),
    sa.Column('put_timestamp', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('account', 'name')
    )
    op.create_table('object',
    sa.Column('account', sa.String(length=256), nullable=False),
    sa.Column('container', sa.String(length=256), nullable=False),
    sa.Column('name', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=256), nullable=False),
    sa.Column('timestamp', sa.String(length=20), nullable=False),
    sa.Column('delete_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('account', 'container', 'name')
    )
    op.create_index(op.f('ix_object_delete_at'), 'object', ['delete_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_object_delete_at'), table_name='object')
    op.drop_table('object')
    op.drop_table('container')
    op.drop_table('account')
