"""server.locked_by and server.locked_reason: the lock action (os-lock-server). NULL
``locked_by`` is an unlocked server; ``owner`` or ``admin`` says who locked it (an
owner cannot undo an admin's lock); ``locked_reason`` from 2.73.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_by", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("locked_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("locked_reason")
        batch_op.drop_column("locked_by")
