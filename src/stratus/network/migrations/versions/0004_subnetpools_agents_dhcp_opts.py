"""Subnet pools (and a subnet's pool), network agents' admin state, ports' extra DHCP options.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subnetpool",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("default_prefixlen", sa.Integer(), nullable=False),
        sa.Column("min_prefixlen", sa.Integer(), nullable=False),
        sa.Column("max_prefixlen", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("default_for", sa.Integer(), nullable=True),
        sa.Column("allocations", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("default_for", name="uq_subnetpool_default_for"),
    )
    op.create_index("ix_subnetpool_project_id", "subnetpool", ["project_id"])
    with op.batch_alter_table("subnet") as batch:
        batch.add_column(sa.Column("subnetpool_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_subnet_subnetpool_id", ["subnetpool_id"])
    with op.batch_alter_table("port") as batch:
        batch.add_column(sa.Column("extra_dhcp_opts", sa.JSON(), nullable=True))
    op.create_table(
        "network_agent",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("network_agent")
    with op.batch_alter_table("port") as batch:
        batch.drop_column("extra_dhcp_opts")
    with op.batch_alter_table("subnet") as batch:
        batch.drop_index("ix_subnet_subnetpool_id")
        batch.drop_column("subnetpool_id")
    op.drop_index("ix_subnetpool_project_id", table_name="subnetpool")
    op.drop_table("subnetpool")
