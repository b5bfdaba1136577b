"""Alembic environment for the compute database."""

from stratus.common.db import run_migrations
from stratus.compute.models import ComputeBase

run_migrations(ComputeBase.metadata)
