"""Alembic environment for the volume database."""

from stratus.common.db import run_migrations
from stratus.volume.models import VolumeBase

run_migrations(VolumeBase.metadata)
