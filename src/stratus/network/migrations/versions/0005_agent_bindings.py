"""An admin's scheduling of routers and networks on agents (l3/dhcp agent scheduler).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_binding",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("hosted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "resource_id"),
    )


def downgrade() -> None:
    op.drop_table("agent_binding")
