"""Metadata definitions: namespaces and the objects, properties, tags and resource type
associations inside them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metadef_namespace",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("namespace", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace"),
    )
    op.create_index("ix_metadef_namespace_owner", "metadef_namespace", ["owner"])
    op.create_table(
        "metadef_item",
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["namespace_id"], ["metadef_namespace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("namespace_id", "kind", "name"),
    )


def downgrade() -> None:
    op.drop_table("metadef_item")
    op.drop_index("ix_metadef_namespace_owner", table_name="metadef_namespace")
    op.drop_table("metadef_namespace")
