"""server_port.tag: the device tag given when an interface is attached (2.49), shown by
os-interface from 2.70 (``compute/server_interfaces.py``).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server_port", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag", sa.String(60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server_port", schema=None) as batch_op:
        batch_op.drop_column("tag")
