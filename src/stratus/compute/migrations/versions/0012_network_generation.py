"""server.network_generation: the last injectNetworkInfo asked of the host's agent
(compute/admin_actions.py); the agent re-plugs the server's ports when it is above the
one it last applied.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("network_generation", sa.Integer, nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("network_generation")
