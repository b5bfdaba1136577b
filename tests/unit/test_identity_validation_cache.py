"""Identity's cache of validated tokens (identity/tokencache.py, issue 17): it answers
repeated validations, and never outlives what it was computed from: every revocation path
of the matrix (also when made by another worker process on the same database), and any
write committed in this process (a grant added shows at once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from identity_api import PASSWORD, Api
from revocation_matrix import CASES, PW, refused, works
from stratus.common import db
from stratus.common.db import Database
from stratus.identity import models as m
from stratus.identity import passwords
from stratus.identity.app import build_app
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.tokens import KeyRepository, TokenSealer

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_argon2",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _worker(tmp_path: Path) -> Identity:
    """One identity worker process's service layer on the shared database."""
    return Identity(Database(f"sqlite:///{tmp_path}/identity.sqlite", "identity"),
                    TokenSealer(KeyRepository(tmp_path / "keys")), token_ttl=3600,
                    validation_cache_seconds=300)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Identity, Identity]]:
    db.sync("stratus.identity", f"sqlite:///{tmp_path}/identity.sqlite")
    KeyRepository(tmp_path / "keys").setup()
    first = _worker(tmp_path)
    bootstrap(first, password=PASSWORD, public_url="http://identity.test:5000")
    second = _worker(tmp_path)
    yield first, second
    first.db.dispose()
    second.db.dispose()


@pytest.fixture
def api(workers: tuple[Identity, Identity]) -> Iterator[Api]:
    with TestClient(build_app(workers[0]), raise_server_exceptions=True) as client:
        yield Api(client)


@pytest.fixture
def other(workers: tuple[Identity, Identity]) -> Iterator[Api]:
    """The API as served by another worker process (its own cache)."""
    with TestClient(build_app(workers[1]), raise_server_exceptions=True) as client:
        yield Api(client)


def test_a_repeated_validation_is_answered_from_the_cache(
        api: Api, workers: tuple[Identity, Identity]) -> None:
    ident = workers[0]
    token = api.token("admin", PASSWORD, "admin")
    ident.validate(token)
    hits = ident.validations.hits
    first = ident.validate(token)
    again = ident.validate(token)
    assert ident.validations.hits == hits + 2
    assert again is first
    assert {r.name for r in again.roles} >= {"admin"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_revocation_matrix_with_the_cache(api: Api, case: str) -> None:
    CASES[case](api, "c" + str(sorted(CASES).index(case)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_revocation_matrix_made_by_another_worker(api: Api, other: Api, case: str) -> None:
    """The other worker makes every change; this one's cached validations must follow."""

    class Split(Api):
        """Validations through this worker, everything else through the other one."""

        def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
            if (path == "/v3/auth/tokens" and method == "GET") or path == "/v3/auth/catalog":
                return api.call(method, path, token, **kw)
            return other.call(method, path, token, **kw)

    split = Split.__new__(Split)
    split.__dict__.update(other.__dict__)
    CASES[case](split, "w" + str(sorted(CASES).index(case)))


def test_a_grant_added_in_this_process_shows_at_once(
        api: Api, workers: tuple[Identity, Identity]) -> None:
    ident = workers[0]
    alice = api.member("gc-alice", password=PW, role="member")
    token = alice["token"]
    before = {r.name for r in ident.validate(token).roles}
    assert "member" in before and "gc-extra" not in before
    ident.validate(token)  # cached
    extra = api.create("role", name="gc-extra")
    project = alice["project"]["id"]
    user = alice["user"]["id"]
    assert api.call("PUT", f"/v3/projects/{project}/users/{user}/roles/{extra['id']}"
                    ).status_code == 204
    assert {r.name for r in ident.validate(token).roles} == before | {"gc-extra"}


def test_nothing_is_cached_while_a_write_is_in_flight(
        api: Api, workers: tuple[Identity, Identity]) -> None:
    ident = workers[0]
    token = api.token("admin", PASSWORD, "admin")
    session = ident.db._sessions()
    try:
        session.add(m.Region(id="in-flight", description=""))
        session.flush()  # written, not committed
        assert ident.validations.state()[1] is False
        ident.validate(token)
        hits = ident.validations.hits
        ident.validate(token)
        assert ident.validations.hits == hits
    finally:
        session.rollback()
        session.close()
    assert ident.validations.state()[1] is True
    ident.validate(token)
    hits = ident.validations.hits
    ident.validate(token)
    assert ident.validations.hits == hits + 1


def test_a_token_revoked_by_another_worker_is_refused_at_once(
        api: Api, other: Api, workers: tuple[Identity, Identity]) -> None:
    token = api.token("admin", PASSWORD, "admin")
    works(api, token)
    works(api, token)
    assert other.call("DELETE", "/v3/auth/tokens",
                      headers={"X-Subject-Token": token}).status_code == 204
    refused(api, token)
