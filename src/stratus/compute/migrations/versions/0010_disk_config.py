"""server.disk_config: the ``OS-DCF:diskConfig`` (AUTO or MANUAL) given at create,
update, rebuild or resize, shown back as Nova does (MANUAL for the servers before it).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disk_config", sa.String(8), nullable=False,
                                      server_default="MANUAL"))


def downgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("disk_config")
