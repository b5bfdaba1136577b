"""Alembic environment for the network database."""

from stratus.common.db import run_migrations
from stratus.network.models import NetworkBase

run_migrations(NetworkBase.metadata)
