"""server.access_ip_v4 / access_ip_v6: the accessIPv4/accessIPv6 a user gives a server.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_ip_v4", sa.String(45), nullable=True))
        batch_op.add_column(sa.Column("access_ip_v6", sa.String(45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("access_ip_v6")
        batch_op.drop_column("access_ip_v4")
