"""In-process identity app on a temporary SQLite file (no server process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from identity_api import PASSWORD, Api
from stratus.common import db
from stratus.common.db import Database
from stratus.identity.app import build_app
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.tokens import KeyRepository, TokenSealer


@pytest.fixture
def identity(tmp_path: Path) -> Iterator[Identity]:
    url = f"sqlite:///{tmp_path}/identity.sqlite"
    db.sync("stratus.identity", url)
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    ident = Identity(Database(url, "identity"), TokenSealer(repo), token_ttl=3600)
    bootstrap(ident, password=PASSWORD, public_url="http://identity.test:5000")
    yield ident
    ident.db.dispose()


@pytest.fixture
def api(identity: Identity) -> Iterator[Api]:
    with TestClient(build_app(identity), raise_server_exceptions=True) as client:
        yield Api(client)
