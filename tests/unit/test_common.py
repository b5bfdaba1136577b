"""Configuration, passwords, policy and the auth cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from stratus.common import policy
from stratus.common.auth import AuthContext, RemoteTokenValidator, TTLCache
from stratus.common.config import Config, ConfigError
from stratus.common.errors import Forbidden, ServiceUnavailable, Unauthorized
from stratus.identity.passwords import hash_password, verify_password

pytestmark = pytest.mark.unit


def test_config_file_then_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("[DEFAULT]\ndebug = true\n[identity]\nbind_port = 5001\n")
    cfg = Config.load(str(conf))
    assert cfg.get_int("identity", "bind_port") == 5001
    assert cfg.get_bool("identity", "debug") is True  # DEFAULT section applies to all
    assert cfg.get("identity", "token_expiration") == "3600"
    monkeypatch.setenv("STRATUS_IDENTITY__BIND_PORT", "6000")
    assert cfg.get_int("identity", "bind_port") == 6000
    monkeypatch.setenv("STRATUS_IDENTITY__WORKERS", "many")
    with pytest.raises(ConfigError, match="not an integer"):
        cfg.get_int("identity", "workers")
    with pytest.raises(ConfigError, match="no default"):
        cfg.get("identity", "no_such_key")


@pytest.mark.parametrize("algorithm", ["argon2id", "bcrypt"])
def test_password_hashes(algorithm: str) -> None:
    hashed = hash_password("correct horse", algorithm)
    assert "correct horse" not in hashed
    assert verify_password("correct horse", hashed)
    assert not verify_password("wrong", hashed)
    assert not verify_password("x", None)
    assert not verify_password("x", "not-a-hash")


def ctx(**kw: object) -> AuthContext:
    return AuthContext(user_id="u", **kw)  # type: ignore[arg-type]


def test_policy_roles_imply_and_projects_isolate() -> None:
    member = ctx(project_id="p1", roles=frozenset({"member", "reader"}))
    reader = ctx(project_id="p1", roles=frozenset({"reader"}))
    admin = ctx(project_id="adm", roles=frozenset({"admin"}))
    assert policy.allowed(member, "member", "p1")
    assert not policy.allowed(member, "member", "p2")
    assert not policy.allowed(reader, "member", "p1")
    assert policy.allowed(reader, "reader", "p1")
    assert policy.allowed(admin, "admin", "anything")
    assert not policy.allowed(member, "admin")
    with pytest.raises(Forbidden, match="compute:delete"):
        policy.enforce(reader, "compute:delete", "member", "p1")
    with pytest.raises(ValueError):
        policy.has_role(member, "owner")


def test_ttl_cache_expires_and_never_outlives_token() -> None:
    cache = TTLCache(ttl=60, max_entries=2)
    short = ctx(expires_at=time.time() - 1)
    cache.put("t", short)
    assert cache.get("t") is None
    cache.put("a", ctx(expires_at=time.time() + 100))
    cache.put("b", ctx(expires_at=time.time() + 100))
    cache.put("c", ctx(expires_at=time.time() + 100))
    assert cache.get("a") is None and cache.get("c") is not None


def token_body(expires: str = "2999-01-01T00:00:00.000000Z") -> dict:
    return {"token": {"user": {"id": "u1", "name": "alice", "domain": {"id": "default"}},
                      "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
                      "roles": [{"id": "r", "name": "member"}, {"id": "r2", "name": "reader"}],
                      "audit_ids": ["a"], "expires_at": expires}}


def test_remote_validator_caches_and_maps_errors() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.headers["X-Subject-Token"] == "good":
            return httpx.Response(200, content=json.dumps(token_body()))
        if request.headers["X-Subject-Token"] == "boom":
            return httpx.Response(500)
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    v = RemoteTokenValidator("http://id:5000", cache_seconds=30, client=client)
    got = v.validate("good")
    assert (got.user_id, got.project_id, got.is_admin) == ("u1", "p1", False)
    assert got.roles == {"member", "reader"}
    v.validate("good")
    assert len(calls) == 1  # cached
    assert calls[0].url.path == "/v3/auth/tokens"
    assert calls[0].headers["X-Auth-Token"] == "good"
    with pytest.raises(Unauthorized):
        v.validate("bad")
    with pytest.raises(Unauthorized):
        v.validate("")
    with pytest.raises(ServiceUnavailable, match="500"):
        v.validate("boom")


def test_remote_validator_unreachable_identity_is_503() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    v = RemoteTokenValidator("http://id:5000/v3",
                             client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        v.validate("t")
