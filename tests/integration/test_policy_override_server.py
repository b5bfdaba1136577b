"""A policy.yaml override takes effect when stratus-identity restarts, and removing
it restores the default; lockout survives a restart of the real process.

Real stratus-identity processes (tests/helpers.IdentityServer) on SQLite and
PostgreSQL; the policy file and the settings reach them as their [identity] section
would (STRATUS_IDENTITY__* variables).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import ADMIN_PASSWORD, IdentityServer, Postgres, password_token

pytestmark = [pytest.mark.integration]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdentityServer]:
    root = tmp_path / "zid-identity"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/zid-identity.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"zid_policy_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    srv = IdentityServer(root, url, extra_env={
        "STRATUS_IDENTITY__POLICY_FILE": str(tmp_path / "zid-policy.yaml"),
        "STRATUS_IDENTITY__LOCKOUT_FAILURE_ATTEMPTS": "10",
        "STRATUS_IDENTITY__LOCKOUT_DURATION": "3600",
    })
    srv.prepare()
    yield srv
    srv.stop()


def restart(srv: IdentityServer) -> None:
    srv.stop()
    srv.start()


def test_an_override_takes_effect_after_a_restart_and_removing_it_restores_the_default(
    server: IdentityServer, tmp_path: Path
) -> None:
    policy = tmp_path / "zid-policy.yaml"
    server.start()
    admin = password_token(server.url, "admin", ADMIN_PASSWORD, "admin")
    headers = {"X-Auth-Token": admin}
    assert httpx.get(f"{server.url}/v3/users", headers=headers).status_code == 200

    policy.write_text('"identity:list_users": "!"\n"identity:get_user": "role:admin"\n')
    restart(server)
    admin = password_token(server.url, "admin", ADMIN_PASSWORD, "admin")
    refused = httpx.get(f"{server.url}/v3/users", headers={"X-Auth-Token": admin})
    assert refused.status_code == 403
    assert "identity:list_users" in refused.json()["error"]["message"]

    policy.unlink()
    restart(server)
    admin = password_token(server.url, "admin", ADMIN_PASSWORD, "admin")
    assert httpx.get(f"{server.url}/v3/users", headers={"X-Auth-Token": admin}).status_code == 200


def test_a_bad_policy_file_stops_the_service_with_one_line(
    server: IdentityServer, tmp_path: Path
) -> None:
    (tmp_path / "zid-policy.yaml").write_text('"identity:list_users": "rule:(admin"\n')
    with pytest.raises(RuntimeError):
        server.start()
    assert "identity:list_users" in server.log()


def test_the_lockout_survives_a_restart_of_the_process(server: IdentityServer) -> None:
    server.start()
    admin = {"X-Auth-Token": password_token(server.url, "admin", ADMIN_PASSWORD, "admin")}
    resp = httpx.post(f"{server.url}/v3/users", headers=admin,
                      json={"user": {"name": "zid-dave", "password": "zid-right-1"}})
    assert resp.status_code == 201, resp.text
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "zid-dave", "domain": {"id": "default"}, "password": "zid-wrong"}}}}}
    for _ in range(10):
        assert httpx.post(f"{server.url}/v3/auth/tokens", json=body).status_code == 401
    restart(server)
    body["auth"]["identity"]["password"]["user"]["password"] = "zid-right-1"
    locked = httpx.post(f"{server.url}/v3/auth/tokens", json=body)
    assert locked.status_code == 401
    assert "zid-right-1" not in server.log() and "zid-wrong" not in server.log()
    assert "failed authentication from 127.0.0.1" in server.log()
