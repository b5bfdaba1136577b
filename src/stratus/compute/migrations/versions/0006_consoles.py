"""server_console and console_token: where each server's VNC display is (the agent's
report) and the one-time console tokens, kept hashed (compute/consoles.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_console",
        sa.Column("server_id", sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "console_token",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("server_id", sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("console_type", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
        sa.Column("used_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_token")
    op.drop_table("server_console")
