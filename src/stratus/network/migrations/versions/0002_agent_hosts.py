"""Agent hosts: tunnel endpoints and network-node flags for the host-state extension.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_host",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("underlay_ip", sa.String(length=64), nullable=True),
        sa.Column("network_node", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )


def downgrade() -> None:
    op.drop_table("agent_host")
