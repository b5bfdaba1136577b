"""Per-host generations of the hosts' desired state (a change wakes only the agents of the
hosts it touches): ``host_generation``, with the row ``/every`` at the current value of
``state_generation`` (every agent's ``since`` stays valid across the upgrade).

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
    op.create_table(
        "host_generation",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )
    op.execute("INSERT INTO host_generation (host, generation) "
               "SELECT '/every', generation FROM state_generation WHERE id = 1")


def downgrade() -> None:
    op.drop_table("host_generation")
