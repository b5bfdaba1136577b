"""Revocation events name a scope domain, a domain, a role or an application credential.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("scope_domain_id", "domain_id", "role_id", "app_cred_id")


def upgrade() -> None:
    with op.batch_alter_table("revocation_event", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("revocation_event", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
