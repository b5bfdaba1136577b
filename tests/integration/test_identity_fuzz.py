"""No malformed request makes the identity API answer 5xx, on SQLite and PostgreSQL.

In-process (no HTTP server) so that ~6,000 requests take seconds, but against
the real database engines: PostgreSQL is stricter than SQLite about lengths
and NUL bytes, which is where a careless handler would answer 500.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fuzz import requests_for
from helpers import Postgres
from identity_api import PASSWORD, Api
from stratus.common import db
from stratus.common.db import Database
from stratus.identity.app import build_app
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.tokens import KeyRepository, TokenSealer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/fuzz.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"fuzz_{os.getpid()}")
    db.sync("stratus.identity", url)
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    ident = Identity(Database(url, "identity"), TokenSealer(repo))
    bootstrap(ident, password=PASSWORD, public_url="http://identity.test:5000")
    with TestClient(build_app(ident), raise_server_exceptions=False) as client:
        yield Api(client)
    ident.db.dispose()


def test_no_route_answers_5xx_to_malformed_requests(engine_api: Api) -> None:
    api = engine_api
    count = 0
    for method, path, body in requests_for(api.client.app.routes):  # type: ignore[attr-defined]
        content = None if body is None else json.dumps(body)
        params = {"enabled": "maybe", "name": "\x00", "domain_id": "d" * 300}
        resp = api.call(method, path, content=content, params=params if method == "GET" else None)
        count += 1
        assert resp.status_code < 500, (method, path, body, resp.text)
        if resp.status_code >= 400 and method != "HEAD":
            assert resp.json()["error"]["message"], (method, path, body)
    assert count > 1000
    # The service still works normally afterwards.
    assert api.issue("admin", PASSWORD, "admin").status_code == 201
