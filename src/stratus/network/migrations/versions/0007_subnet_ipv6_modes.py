"""IPv6 subnets: ``ipv6_ra_mode`` and ``ipv6_address_mode`` (NULL: unset, and always for IPv4).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subnet", sa.Column("ipv6_ra_mode", sa.String(length=16), nullable=True))
    op.add_column("subnet", sa.Column("ipv6_address_mode", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subnet") as batch:
        batch.drop_column("ipv6_address_mode")
        batch.drop_column("ipv6_ra_mode")
