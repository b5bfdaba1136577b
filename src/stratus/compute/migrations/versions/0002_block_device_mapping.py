"""block device mappings (volumes of servers)

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
    op.create_table('block_device_mapping',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('server_id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('attachment_id', sa.String(length=36), nullable=True),
    sa.Column('device', sa.String(length=32), nullable=False),
    sa.Column('tag', sa.String(length=60), nullable=True),
    sa.Column('boot_index', sa.Integer(), nullable=True),
    sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('connection_info', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['server.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('server_id', 'volume_id', name='uq_bdm_server_volume')
    )
    with op.batch_alter_table('block_device_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_block_device_mapping_server_id'), ['server_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_block_device_mapping_volume_id'), ['volume_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('block_device_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_block_device_mapping_volume_id'))
        batch_op.drop_index(batch_op.f('ix_block_device_mapping_server_id'))
    op.drop_table('block_device_mapping')
