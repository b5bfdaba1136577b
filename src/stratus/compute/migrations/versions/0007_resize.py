"""server.old_flavor, old_flavor_id, resize_generation, resize_revert and the migration
table: a resize waiting to be confirmed keeps the flavor it came from, the agent resizes
(or reverts) while its own generation is below the server's, and ``os-migrations`` lists
each resize (``compute/server_resize.py``).

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
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.add_column(sa.Column("old_flavor", sa.JSON, nullable=True))
        batch_op.add_column(sa.Column("old_flavor_id", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("resize_generation", sa.Integer, nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("resize_revert", sa.Boolean, nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "migration",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("server_id", sa.String(36), nullable=False, index=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("migration_type", sa.String(16), nullable=False),
        sa.Column("source_compute", sa.String(255), nullable=True),
        sa.Column("dest_compute", sa.String(255), nullable=True),
        sa.Column("old_flavor_id", sa.String(255), nullable=False),
        sa.Column("new_flavor_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("migration")
    with op.batch_alter_table("server", schema=None) as batch_op:
        batch_op.drop_column("resize_revert")
        batch_op.drop_column("resize_generation")
        batch_op.drop_column("old_flavor_id")
        batch_op.drop_column("old_flavor")
