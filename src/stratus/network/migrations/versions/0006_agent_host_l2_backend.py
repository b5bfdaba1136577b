"""The L2 backend a host's network agent reported (``ovs``, ``linuxbridge``; null: unknown).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agent_host", sa.Column("l2_backend", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_host") as batch:
        batch.drop_column("l2_backend")
