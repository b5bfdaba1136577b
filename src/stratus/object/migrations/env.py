"""Alembic environment for the object listing database."""

from stratus.common.db import run_migrations
from stratus.object.models import ObjectBase

run_migrations(ObjectBase.metadata)
