"""compute_host.uptime: the host's uptime line its agent reports with each heartbeat
(os-hypervisors' uptime); NULL until it has.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_host", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uptime", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compute_host", schema=None) as batch_op:
        batch_op.drop_column("uptime")
