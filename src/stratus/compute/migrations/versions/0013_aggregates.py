"""Host aggregates (os-aggregates): aggregate, aggregate_host, and
compute_host.aggregate_zone, the zone a host takes from its aggregate
(compute/aggregates.py).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aggregate",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "aggregate_host",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("aggregate_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["aggregate_id"], ["aggregate.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("aggregate_id", "host", name="uq_aggregate_host"),
    )
    op.create_index("ix_aggregate_host_aggregate_id", "aggregate_host", ["aggregate_id"])
    op.create_index("ix_aggregate_host_host", "aggregate_host", ["host"])
    with op.batch_alter_table("compute_host", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aggregate_zone", sa.String(length=255),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compute_host", schema=None) as batch_op:
        batch_op.drop_column("aggregate_zone")
    op.drop_index("ix_aggregate_host_host", table_name="aggregate_host")
    op.drop_index("ix_aggregate_host_aggregate_id", table_name="aggregate_host")
    op.drop_table("aggregate_host")
    op.drop_table("aggregate")
