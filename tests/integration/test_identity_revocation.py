"""The revocation matrix (issue 19) against a real stratus-identity, on SQLite and on
PostgreSQL: for each revoking event, a token issued before it stays refused (404 on
validation, 401 as X-Auth-Token) after the event is undone, and a new token works.

The cases are in tests/revocation_matrix.py (the unit test runs them in-process).
The server runs two workers, so an event written by one process must be seen by
the other at its next validation (the events are cached per process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from helpers import ADMIN_PASSWORD, IdentityServer, Postgres
from identity_api import Api
from revocation_matrix import CASES

pytestmark = [pytest.mark.integration]


class ServerApi(Api):
    """tests/identity_api.Api over HTTP to a real server, as its bootstrap admin."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client  # type: ignore[assignment]
        self.admin = self.token("admin", ADMIN_PASSWORD, "admin")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ServerApi]:
    root = tmp_path_factory.mktemp(f"revocation-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/identity.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"revocation_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = IdentityServer(root, url, extra_env={"STRATUS_IDENTITY__WORKERS": "2"})
    srv.prepare()
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            yield ServerApi(client)
    finally:
        srv.stop()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_revoked_token_stays_revoked_when_the_cause_is_undone(api: ServerApi,
                                                                case: str) -> None:
    CASES[case](api, "i" + str(sorted(CASES).index(case)))
