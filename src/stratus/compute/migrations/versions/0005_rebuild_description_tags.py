"""server.rebuild_generation, description, tags: the last rebuild asked for (the agent
rebuilds while its own is below it), the server's description (2.19) and the tags given at
create (2.52).

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
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rebuild_generation", sa.Integer, nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("description", sa.Text, nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("description")
        batch_op.drop_column("rebuild_generation")
