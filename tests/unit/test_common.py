"""Configuration (strict loading included), passwords, policy and the auth cache."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from stratus.common import policy
from stratus.common.app import run_service
from stratus.common.auth import AuthContext, RemoteTokenValidator, TTLCache
from stratus.common.clients import ApiClient
from stratus.common.config import DEFAULTS, Config, ConfigError, known_keys
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


def test_config_default_section_env_applies_to_every_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("[DEFAULT]\ndebug = false\n[image]\ndebug = false\n")
    cfg = Config.load(str(conf))
    monkeypatch.setenv("STRATUS_DEFAULT__DEBUG", "true")
    assert cfg.get_bool("DEFAULT", "debug") is True
    assert cfg.get_bool("identity", "debug") is True  # not set for [identity]: [DEFAULT]'s
    assert cfg.get_bool("image", "debug") is False  # the section's own value wins
    monkeypatch.setenv("STRATUS_IMAGE__DEBUG", "true")
    assert cfg.get_bool("image", "debug") is True


def test_config_misspelled_key_names_file_key_and_nearest_valid_key(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("[DEFAULT]\ndebug = true\n[identity]\ndatabse_url = sqlite:///x\n")
    with pytest.raises(ConfigError) as err:
        Config.load(str(conf))
    message = str(err.value)
    assert "\n" not in message
    assert str(conf) in message
    assert "[identity] databse_url" in message
    assert message.endswith("nearest valid key: database_url")
    conf.write_text("[DEFAULT]\ndebgu = true\n")  # [DEFAULT] is checked too
    with pytest.raises(ConfigError, match=r"nearest valid key: debug$"):
        Config.load(str(conf))


def test_config_unknown_section_names_the_nearest_section(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("[compute_agnet]\nhost = h1\n")
    with pytest.raises(ConfigError) as err:
        Config.load(str(conf))
    message = str(err.value)
    assert message.startswith(f"{conf}: unknown section [compute_agnet]")
    assert "nearest valid section: [compute_agent]" in message
    conf.write_text("[zzz]\n")  # an empty unknown section too, with the list of valid ones
    with pytest.raises(ConfigError, match=r"unknown section \[zzz\]; valid sections: \[DEFAULT\]"):
        Config.load(str(conf))


def test_config_keys_of_default_are_valid_in_every_section(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    # identity_url is a [DEFAULT] key that service sections override (the roles write it).
    conf.write_text("[DEFAULT]\nworkers = 2\n[compute]\nidentity_url = http://id/v3\n"
                    "[compute_agent]\ndebug = true\n")
    cfg = Config.load(str(conf))
    assert cfg.get("compute", "identity_url") == "http://id/v3"
    assert cfg.get_int("image", "workers") == 2
    assert cfg.path == str(conf)


def test_config_missing_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(str(tmp_path))}/absent.conf: config file "
                       "not found$"):
        Config.load(str(tmp_path / "absent.conf"))
    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(tmp_path / "env.conf"))
    with pytest.raises(ConfigError, match=r"env\.conf: config file not found"):
        Config.load()
    monkeypatch.delenv("STRATUS_CONFIG_FILE")
    monkeypatch.setattr("stratus.common.config.DEFAULT_CONFIG_FILE", str(tmp_path / "etc.conf"))
    with pytest.raises(ConfigError, match=r"etc\.conf: config file not found \(neither "
                       r"--config-file nor STRATUS_CONFIG_FILE is set\)$"):
        Config.load()
    (tmp_path / "etc.conf").write_text("")
    assert Config.load().get("identity", "bind_port") == "5000"


def test_config_env_override_with_a_bad_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("[DEFAULT]\n")
    monkeypatch.setenv("STRATUS_COMPUTE_AGENT__VIF_PLUG_WAIT", "false")  # a valid one
    monkeypatch.setenv("STRATUS_METADATA__IDENTITY_URL", "http://id/v3")  # a [DEFAULT] key
    assert Config.load(str(conf)).get_bool("compute_agent", "vif_plug_wait") is False
    monkeypatch.setenv("STRATUS_IMAGE__MAX_IMAGESIZE", "10")
    with pytest.raises(ConfigError) as err:
        Config.load(str(conf))
    assert str(err.value) == (
        f"{conf}: environment variable STRATUS_IMAGE__MAX_IMAGESIZE: unknown key [image] "
        "max_imagesize; nearest valid key: STRATUS_IMAGE__MAX_IMAGE_SIZE")
    monkeypatch.delenv("STRATUS_IMAGE__MAX_IMAGESIZE")
    monkeypatch.setenv("STRATUS_IMAGES__MAX_IMAGE_SIZE", "10")
    with pytest.raises(ConfigError, match=r"unknown section \[images\] \(key max_image_size\); "
                       r"nearest valid section: STRATUS_IMAGE__MAX_IMAGE_SIZE$"):
        Config.load(str(conf))


def test_run_service_stops_on_a_bad_setting_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRATUS_CONFIG_FILE", "unused")  # run_service sets it from argv
    checked: list[Config] = []
    conf = tmp_path / "s.conf"
    conf.write_text("[identity]\nbind_prot = 5001\n")
    argv = ["--config-file", str(conf)]
    assert run_service("stratus-x", None, "identity", "x:y", checked.append, argv) == 1
    err = capsys.readouterr().err
    assert err == (f"stratus-x: {conf}: unknown key [identity] bind_prot; "
                   "nearest valid key: bind_port\n")
    assert checked == []
    argv = ["--config-file", str(tmp_path / "absent.conf")]
    assert run_service("stratus-x", None, "identity", "x:y", checked.append, argv) == 1
    assert capsys.readouterr().err == f"stratus-x: {tmp_path}/absent.conf: config file not found\n"


def template_keys() -> dict[str, set[str]]:
    """section -> keys the roles' stratus.conf templates write (quota loops expanded from
    the role's defaults)."""
    import yaml

    roles = Path(__file__).resolve().parents[2] / "roles"
    found: dict[str, set[str]] = {}
    for template in sorted(roles.glob("*/templates/**/stratus.conf*.j2")):
        section = None
        loop: list[str] = []
        for line in template.read_text().splitlines():
            if m := re.match(r"^\[(\w+)\]\s*$", line):
                section = m.group(1)
                found.setdefault(section, set())
            elif m := re.match(r"^\{%-?\s*for \w+, \w+ in (\w+) \|", line):
                defaults = yaml.safe_load((template.parents[1] / "defaults/main.yml").read_text())
                loop = list(defaults[m.group(1)])
            elif section is not None and (m := re.match(r"^(\w+)(\{\{\s*\w+\s*\}\})?\s*=", line)):
                if m.group(2):
                    found[section] |= {m.group(1) + item for item in loop}
                else:
                    found[section].add(m.group(1))
    return found


def test_every_key_the_roles_write_is_a_known_key() -> None:
    written = template_keys()
    if not written:
        pytest.skip("no stratus.conf templates under roles/*/templates")
    assert set(written) <= set(DEFAULTS)
    unknown = {s: sorted(keys - known_keys(s)) for s, keys in written.items()}
    assert {s: keys for s, keys in unknown.items() if keys} == {}
    assert {"identity", "compute", "compute_agent", "agent"} <= set(written)


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


def test_api_client_keeps_only_whole_urls_as_they_are() -> None:
    client = ApiClient("https://api.test/v2.0/")
    assert client.url("networks") == "https://api.test/v2.0/networks"
    assert client.url("/http:evil.test/x") == "https://api.test/v2.0/http:evil.test/x"
    assert client.url("http:evil.test") == "https://api.test/v2.0/http:evil.test"
    assert client.url("httpbin") == "https://api.test/v2.0/httpbin"
    assert client.url("https://api.test/v2.0/ports?marker=1") == \
        "https://api.test/v2.0/ports?marker=1"
