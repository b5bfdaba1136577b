"""Alembic environment for the identity database."""

from stratus.common.db import run_migrations
from stratus.identity.models import IdentityBase

run_migrations(IdentityBase.metadata)
