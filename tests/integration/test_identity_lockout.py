"""Lockout and password rules against the real identity app on SQLite and PostgreSQL.

In-process (starlette TestClient) over a real database. "Restart" here builds a
new Identity and app over the same database and key repository: the lockout
lives in the user's row, not in the process, which is what a restart keeps.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import Postgres
from identity_api import PASSWORD, Api
from stratus.common import db
from stratus.common.db import Database
from stratus.identity.app import build_app
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.security import SecurityRules
from stratus.identity.tokens import KeyRepository, TokenSealer

pytestmark = [pytest.mark.integration]

RULES = SecurityRules(
    lockout_failure_attempts=10,
    lockout_duration=3600,
    password_min_length=8,
    password_regex=r"(?=.*\d).+",
    password_regex_description="The password must contain at least one digit.",
    unique_last_password_count=2,
)


class Service:
    """An identity service over one database that can be 'restarted'."""

    def __init__(self, url: str, keys: Path) -> None:
        self.url = url
        self.keys = keys
        self.ident: Identity | None = None
        self.client: TestClient | None = None

    def start(self) -> Api:
        repo = KeyRepository(self.keys)
        self.ident = Identity(Database(self.url, "identity"), TokenSealer(repo), security=RULES)
        self.client = TestClient(build_app(self.ident), raise_server_exceptions=False)
        self.client.__enter__()
        return Api(self.client)

    def stop(self) -> None:
        if self.client is not None:
            self.client.__exit__(None, None, None)
        if self.ident is not None:
            self.ident.db.dispose()
        self.client = self.ident = None


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/zid-lockout.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"zid_lockout_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    db.sync("stratus.identity", url)
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    first = Identity(Database(url, "identity"), TokenSealer(repo))
    bootstrap(first, password=PASSWORD, public_url="http://identity.test:5000")
    first.db.dispose()
    svc = Service(url, tmp_path / "keys")
    yield svc
    svc.stop()


def test_ten_wrong_passwords_lock_until_an_admin_unlocks_and_survive_a_restart(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    api = service.start()
    user = api.member("zid-alice", password="right-pw-1")["user"]
    caplog.set_level(logging.WARNING, logger="stratus.identity.api.tokens")
    wrong = [api.issue("zid-alice", f"wrong-{i}", "zid-alice") for i in range(10)]
    assert {r.status_code for r in wrong} == {401}
    # Failed logins are logged with the source address and the user, never the password.
    failures = [r for r in caplog.records if "failed authentication" in r.getMessage()]
    assert len(failures) == 10
    assert "testclient" in failures[0].getMessage() and "zid-alice" in failures[0].getMessage()
    assert not any("wrong-" in r.getMessage() for r in caplog.records)
    # Locked: the right password gets exactly the answer a wrong one gets.
    locked = api.issue("zid-alice", "right-pw-1", "zid-alice")
    assert (locked.status_code, locked.json()) == (wrong[-1].status_code, wrong[-1].json())

    service.stop()
    api = service.start()  # a new service over the same database
    still = api.issue("zid-alice", "right-pw-1", "zid-alice")
    assert (still.status_code, still.json()) == (wrong[-1].status_code, wrong[-1].json())

    # A member cannot unlock itself; an admin does, by updating the user with enabled=true.
    resp = api.call("PATCH", f"/v3/users/{user['id']}", json={"user": {"enabled": True}})
    assert resp.status_code == 200, resp.text
    assert api.issue("zid-alice", "right-pw-1", "zid-alice").status_code == 201


def test_a_good_login_resets_the_count(service: Service) -> None:
    api = service.start()
    api.member("zid-bob", password="right-pw-1")
    for round_ in range(2):
        for i in range(9):
            assert api.issue("zid-bob", f"wrong-{round_}-{i}").status_code == 401
        assert api.issue("zid-bob", "right-pw-1").status_code == 201


def test_password_rules_on_create_update_and_self_service_change(service: Service) -> None:
    api = service.start()
    short = api.call("POST", "/v3/users", json={"user": {"name": "zid-c", "password": "a1"}})
    assert short.status_code == 400 and "at least 8" in short.json()["error"]["message"]
    nodigit = api.call("POST", "/v3/users",
                       json={"user": {"name": "zid-c", "password": "abcdefgh"}})
    assert nodigit.status_code == 400
    assert "at least one digit" in nodigit.json()["error"]["message"]
    assert api.call("GET", "/v3/users", params={"name": "zid-c"}).json()["users"] == []

    member = api.member("zid-carol", password="first-pw-1")
    uid = member["user"]["id"]
    # The admin's update follows the same rules.
    bad = api.call("PATCH", f"/v3/users/{uid}", json={"user": {"password": "no-digits"}})
    assert bad.status_code == 400
    # Self-service change: the history refuses the last two passwords.
    def change(original: str, new: str) -> int:
        token = api.token("zid-carol", original)
        resp = api.call("POST", f"/v3/users/{uid}/password", token=token,
                        json={"user": {"original_password": original, "password": new}})
        return int(resp.status_code)

    assert change("first-pw-1", "first-pw-1") == 400
    assert change("first-pw-1", "second-pw-2") == 204
    assert change("second-pw-2", "first-pw-1") == 400
    assert change("second-pw-2", "third-pw-3") == 204
    assert change("third-pw-3", "first-pw-1") == 204  # three passwords ago: allowed again
