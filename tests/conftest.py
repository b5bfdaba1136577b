"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import ADMIN_PASSWORD, Postgres


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A private PostgreSQL cluster for the session, stopped by pid at the end."""
    pg = Postgres(tmp_path_factory.mktemp("pg", numbered=True) / "cluster")
    try:
        pg.init()
        pg.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pg.stop()
        pytest.skip(f"PostgreSQL cannot start on this machine, so the PostgreSQL variant "
                    f"is skipped: {exc}")
    yield pg
    pg.stop()


@pytest.fixture
def admin_password() -> str:
    return ADMIN_PASSWORD
