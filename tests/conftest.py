"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import ADMIN_PASSWORD, Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster for the session, stopped by pid at the end.

    Skipped with the reason when PostgreSQL cannot start here, unless
    STRATUS_REQUIRE_POSTGRES=1 (set by `make test`), where that is a failure.
    """
    root = Path(tempfile.mkdtemp(prefix="stratus-test-pg-"))
    pg = Postgres(root / "cluster")
    try:
        pg.init()
        pg.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        message = f"PostgreSQL cannot start here: {exc} {detail.decode(errors='replace')}"
        if os.environ.get("STRATUS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(f"{message}; the PostgreSQL variants are skipped")
    yield pg
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def admin_password() -> str:
    return ADMIN_PASSWORD
