"""Alembic environment for the image database."""

from stratus.common.db import run_migrations
from stratus.image.models import ImageBase

run_migrations(ImageBase.metadata)
