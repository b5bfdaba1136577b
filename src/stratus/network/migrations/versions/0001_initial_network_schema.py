"""Initial network schema: networks, subnets, ports, IP allocations, routers, floating IPs,
security groups, quotas.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("network_type", sa.String(length=16), nullable=False),
        sa.Column("physical_network", sa.String(length=64), nullable=True),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_type", "physical_network", name="uq_network_physnet"),
        sa.UniqueConstraint("network_type", "segmentation_id", name="uq_network_segment"),
    )
    with op.batch_alter_table("network", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_project_id"), ["project_id"], unique=False)

    op.create_table(
        "quota",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "resource"),
    )
    op.create_table(
        "securitygroup",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("stateful", sa.Boolean(), nullable=False),
        sa.Column("default_for", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("default_for"),
    )
    with op.batch_alter_table("securitygroup", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_securitygroup_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "port",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mac_address", sa.String(length=17), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("device_owner", sa.String(length=255), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("allowed_address_pairs", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "mac_address", name="uq_port_network_mac"),
    )
    with op.batch_alter_table("port", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_port_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_port_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_port_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_port_project_id"), ["project_id"], unique=False)

    op.create_table(
        "securitygrouprule",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("ethertype", sa.String(length=4), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=True),
        sa.Column("port_range_min", sa.Integer(), nullable=True),
        sa.Column("port_range_max", sa.Integer(), nullable=True),
        sa.Column("remote_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("remote_group_id", sa.String(length=36), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["remote_group_id"], ["securitygroup.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["security_group_id"], ["securitygroup.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("securitygrouprule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_securitygrouprule_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_securitygrouprule_security_group_id"),
            ["security_group_id"],
            unique=False,
        )

    op.create_table(
        "subnet",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("allocation_pools", sa.JSON(), nullable=False),
        sa.Column("dns_nameservers", sa.JSON(), nullable=False),
        sa.Column("host_routes", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["network.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subnet", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subnet_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_subnet_project_id"), ["project_id"], unique=False)

    op.create_table(
        "floatingip",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("floating_network_id", sa.String(length=36), nullable=False),
        sa.Column("floating_ip_address", sa.String(length=64), nullable=False),
        sa.Column("floating_port_id", sa.String(length=36), nullable=False),
        sa.Column("fixed_port_id", sa.String(length=36), nullable=True),
        sa.Column("fixed_ip_address", sa.String(length=64), nullable=True),
        sa.Column("router_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fixed_port_id"], ["port.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["floating_network_id"],
            ["network.id"],
        ),
        sa.ForeignKeyConstraint(
            ["floating_port_id"],
            ["port.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uq_floatingip_fixed"),
    )
    with op.batch_alter_table("floatingip", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_floatingip_fixed_port_id"), ["fixed_port_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_floatingip_floating_network_id"), ["floating_network_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_floatingip_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_floatingip_router_id"), ["router_id"], unique=False)

    op.create_table(
        "ipallocation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["port.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnet.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subnet_id", "ip_address", name="uq_ipallocation_subnet_ip"),
    )
    with op.batch_alter_table("ipallocation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ipallocation_network_id"), ["network_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ipallocation_port_id"), ["port_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ipallocation_subnet_id"), ["subnet_id"], unique=False)

    op.create_table(
        "port_securitygroup",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("security_group_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["port.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["security_group_id"],
            ["securitygroup.id"],
        ),
        sa.PrimaryKeyConstraint("port_id", "security_group_id"),
    )
    with op.batch_alter_table("port_securitygroup", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_port_securitygroup_security_group_id"),
            ["security_group_id"],
            unique=False,
        )

    op.create_table(
        "router",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("gw_port_id", sa.String(length=36), nullable=True),
        sa.Column("enable_snat", sa.Boolean(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["gw_port_id"], ["port.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("router", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_router_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("router", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_router_project_id"))

    op.drop_table("router")
    with op.batch_alter_table("port_securitygroup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_port_securitygroup_security_group_id"))

    op.drop_table("port_securitygroup")
    with op.batch_alter_table("ipallocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ipallocation_subnet_id"))
        batch_op.drop_index(batch_op.f("ix_ipallocation_port_id"))
        batch_op.drop_index(batch_op.f("ix_ipallocation_network_id"))

    op.drop_table("ipallocation")
    with op.batch_alter_table("floatingip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_floatingip_router_id"))
        batch_op.drop_index(batch_op.f("ix_floatingip_project_id"))
        batch_op.drop_index(batch_op.f("ix_floatingip_floating_network_id"))
        batch_op.drop_index(batch_op.f("ix_floatingip_fixed_port_id"))

    op.drop_table("floatingip")
    with op.batch_alter_table("subnet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subnet_project_id"))
        batch_op.drop_index(batch_op.f("ix_subnet_network_id"))

    op.drop_table("subnet")
    with op.batch_alter_table("securitygrouprule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_securitygrouprule_security_group_id"))
        batch_op.drop_index(batch_op.f("ix_securitygrouprule_project_id"))

    op.drop_table("securitygrouprule")
    with op.batch_alter_table("port", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_port_project_id"))
        batch_op.drop_index(batch_op.f("ix_port_network_id"))
        batch_op.drop_index(batch_op.f("ix_port_host_id"))
        batch_op.drop_index(batch_op.f("ix_port_device_id"))

    op.drop_table("port")
    with op.batch_alter_table("securitygroup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_securitygroup_project_id"))

    op.drop_table("securitygroup")
    op.drop_table("quota")
    with op.batch_alter_table("network", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_project_id"))

    op.drop_table("network")
