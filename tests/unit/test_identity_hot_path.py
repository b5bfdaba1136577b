"""Token validation's hot path (issue 17): a token that validates itself (X-Auth-Token ==
X-Subject-Token, how every service checks its callers) is validated once, answered on the
event loop from the validation cache with its rendered document, and still refused at
once on every revocation path, also when another worker process made the change; the
fingerprint read outside a session fails as a 503 when the database is gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

import revocation_matrix
from identity_api import PASSWORD, Api
from revocation_matrix import CASES
from stratus.common import db
from stratus.common.db import Database
from stratus.identity import passwords
from stratus.identity.api import tokens as token_api
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
    with TestClient(build_app(workers[0]), raise_server_exceptions=False) as client:
        yield Api(client)


@pytest.fixture
def other(workers: tuple[Identity, Identity]) -> Iterator[Api]:
    with TestClient(build_app(workers[1]), raise_server_exceptions=False) as client:
        yield Api(client)


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the token handlers' work handed to a worker thread."""
    handed: list[str] = []
    real = token_api.run_in_threadpool

    async def counting(fn: Any, *args: Any) -> Any:
        handed.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(token_api, "run_in_threadpool", counting)
    return handed


def self_check(api: Api, token: str, method: str = "GET", query: str = "?nocatalog") -> Any:
    return api.client.request(method, f"/v3/auth/tokens{query}",
                              headers={"X-Auth-Token": token, "X-Subject-Token": token})


def test_a_self_validation_validates_once_and_then_on_the_event_loop(
        api: Api, workers: tuple[Identity, Identity], threads: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ident = workers[0]
    token = api.token("admin", PASSWORD, "admin")
    calls: list[bool] = []
    real = ident.validate

    def counting(tok: str, session: Any = None, cached_only: bool = False) -> Any:
        calls.append(cached_only)
        return real(tok, session, cached_only)

    monkeypatch.setattr(ident, "validate", counting)
    first = self_check(api, token)
    assert first.status_code == 200, first.text
    # A miss on the loop, then one validation in a thread (not two: one per header).
    assert calls == [True, False] and threads == ["_validation"]
    calls.clear()
    again = self_check(api, token)
    assert again.status_code == 200 and again.content == first.content
    assert calls == [True] and threads == ["_validation"]  # no thread this time
    assert again.headers["X-Subject-Token"] == token
    assert again.json()["token"]["project"]["name"] == "admin"
    head = self_check(api, token, "HEAD")
    assert head.status_code == 200 and head.headers["X-Subject-Token"] == token
    assert threads == ["_validation"]


def test_the_catalog_is_rendered_once_and_again_after_a_change(
        api: Api, threads: list[str]) -> None:
    token = api.token("admin", PASSWORD, "admin")
    first = self_check(api, token, query="")
    assert first.status_code == 200
    assert self_check(api, token, query="").content == first.content
    assert threads == ["_validation"]
    service = api.create("service", type="zpf-type", name="zpf-service")
    api.create("endpoint", service_id=service["id"], interface="public",
               url="http://zpf.test/v1", region_id="RegionOne")
    after = self_check(api, token, query="")
    assert after.status_code == 200
    types = {entry["type"] for entry in after.json()["token"]["catalog"]}
    assert "zpf-type" in types
    # Without the catalog, the same validation gives a document without one.
    assert "catalog" not in self_check(api, token).json()["token"]


@pytest.mark.parametrize("bad", ["", "not-a-token"])
def test_a_self_validation_of_a_bad_token_is_401(api: Api, bad: str) -> None:
    got = self_check(api, bad) if bad else api.client.get(
        "/v3/auth/tokens", headers={"X-Subject-Token": "x"})
    assert got.status_code == 401, got.text


def test_another_users_token_still_needs_an_admin(api: Api, threads: list[str]) -> None:
    alice = api.member("hp-alice", password="pw")
    bob = api.member("hp-bob", password="pw")
    got = api.client.get("/v3/auth/tokens", headers={
        "X-Auth-Token": alice["token"], "X-Subject-Token": bob["token"]})
    assert got.status_code == 403, got.text
    assert threads == ["_validation"]  # two different tokens: always in a thread
    assert api.call("GET", "/v3/auth/tokens",
                    headers={"X-Subject-Token": bob["token"]}).status_code == 200


def test_with_a_database_over_the_network_validation_stays_in_a_thread(
        api: Api, workers: tuple[Identity, Identity], threads: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ident = workers[0]
    token = api.token("admin", PASSWORD, "admin")
    assert ident.validates_on_loop
    monkeypatch.setattr(ident.db.engine.dialect, "name", "postgresql")
    assert not ident.validates_on_loop
    for _ in range(2):
        assert self_check(api, token).status_code == 200
    assert threads == ["_validation", "_validation"]


def test_a_database_gone_is_a_503_not_a_500(
        api: Api, workers: tuple[Identity, Identity], tmp_path: Path) -> None:
    token = api.token("admin", PASSWORD, "admin")
    assert self_check(api, token).status_code == 200
    for ident in workers:
        ident.db.dispose()
    (tmp_path / "identity.sqlite").unlink()  # opened again: a database without tables
    got = self_check(api, token)
    assert got.status_code == 503, got.text


@pytest.mark.parametrize("case", sorted(CASES))
def test_revocation_matrix_on_self_validation_made_by_another_worker(
        api: Api, other: Api, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every revocation path, each change made through the other worker; this worker's
    self-validations (cached, on the event loop) follow at once."""
    works, refused = revocation_matrix.works, revocation_matrix.refused

    def works_self(matrix_api: Api, token: str) -> None:
        works(matrix_api, token)
        got = self_check(api, token)
        assert got.status_code == 200, got.text
        assert self_check(api, token).status_code == 200  # the cached answer

    def refused_self(matrix_api: Api, token: str) -> None:
        refused(matrix_api, token)
        got = self_check(api, token)
        assert got.status_code == 401, got.text

    monkeypatch.setattr(revocation_matrix, "works", works_self)
    monkeypatch.setattr(revocation_matrix, "refused", refused_self)

    class Split(Api):
        def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
            if (path == "/v3/auth/tokens" and method == "GET") or path == "/v3/auth/catalog":
                return api.call(method, path, token, **kw)
            return other.call(method, path, token, **kw)

    split = Split.__new__(Split)
    split.__dict__.update(other.__dict__)
    CASES[case](split, "s" + str(sorted(CASES).index(case)))
