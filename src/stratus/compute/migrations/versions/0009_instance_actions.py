"""instance_action and instance_action_event: one action per server request that changed
the server, with the event of its work (``compute/instance_actions.py``,
``os-instance-actions``).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_action",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("server_id", sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("message", sa.String(255), nullable=True),
        sa.Column("start_time", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_instance_action_server_request", "instance_action",
                    ["server_id", "request_id"])
    op.create_table(
        "instance_action_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.Integer,
                  sa.ForeignKey("instance_action.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("server_id", sa.String(36), sa.ForeignKey("server.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("awaits", sa.String(8), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("start_time", sa.DateTime, nullable=False),
        sa.Column("finish_time", sa.DateTime, nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("instance_action_event")
    op.drop_index("ix_instance_action_server_request", "instance_action")
    op.drop_table("instance_action")
