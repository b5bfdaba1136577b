"""Issue 13's secrets in the roles and playbooks, scanned in the YAML (and the TLS settings).

- Every task that writes a private key (the CA's, a host's: a destination or path naming
  ``key``) sets a mode no other user can read and ``no_log``; a shell that makes keys runs
  under ``umask 077``; the CA directory is 0700.
- Every ``uri`` task that sends a token (``X-Auth-Token``) has ``no_log`` (the token would
  be printed with the task's arguments), in the roles and the playbooks (demo.yml).
- ``stratus.common.tls``: a key without a certificate, or an unreadable file, stops the
  service at start with one line; an API without a certificate serves plain http; one
  with a certificate gets TLS 1.2 at least.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import pytest
from test_roles_no_log import play_tasks, task_files

from stratus.common.config import Config, ConfigError
from stratus.common.tls import Tls, _tls12_context, use_ca_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = {"0600", "0640", "0700", "0750", "0400", "0440"}
WRITERS = {"ansible.builtin.copy", "ansible.builtin.template", "ansible.builtin.file"}


def _key_writes(task: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for module in WRITERS & set(task):
        args = task[module]
        target = str(args.get("dest") or args.get("path") or "")
        if re.search(r"key(_file|_src)?\b|\.key\b", target) and "trust" not in target:
            found.append((target, args))
    return found


def test_private_keys_are_written_private_and_unlogged() -> None:
    problems, count = [], 0
    for path in task_files():
        for task in play_tasks(path):
            for target, args in _key_writes(task):
                count += 1
                if str(args.get("mode")) not in PRIVATE:
                    problems.append(f"{path}: {task.get('name')!r} writes {target} mode "
                                    f"{args.get('mode')}")
                if ("content" in args or "src" in args) and task.get("no_log") is not True:
                    problems.append(f"{path}: {task.get('name')!r} lacks no_log")
    assert count >= 1  # the host's key in roles/common/tasks/tls.yml
    assert not problems, "\n".join(problems)


def test_the_ca_is_made_private() -> None:
    # play_tasks yields a block's tasks too
    tasks = [t for t in play_tasks(ROOT / "roles" / "common" / "tasks" / "tls.yml")
             if "block" not in t]
    makers = [t for t in tasks if "ansible.builtin.shell" in t
              and re.search(r"genpkey|-newkey", str(t["ansible.builtin.shell"]))]
    assert len(makers) == 3, "the CA's key, its renewal's and a host's key"
    for task in makers:
        assert "umask 077" in str(task["ansible.builtin.shell"]["cmd"]), task.get("name")
    dirs = [t for t in tasks if "ansible.builtin.file" in t]
    assert any("common_tls_ca_dir" in str(t) and t["ansible.builtin.file"].get("mode") == "0700"
               for t in dirs)
    slurps = [t for t in tasks if "ansible.builtin.slurp" in t]
    assert slurps and all(t.get("no_log") is True for t in slurps)


def _sends_token(task: dict[str, Any]) -> bool:
    for module in ("ansible.builtin.uri", "uri"):
        headers = (task.get(module) or {}).get("headers") or {}
        if any(k.lower() == "x-auth-token" for k in headers):
            return True
    return False


def test_every_uri_task_sending_a_token_has_no_log() -> None:
    files = task_files() + sorted((ROOT / "playbooks").glob("*.yml"))
    problems, count = [], 0
    for path in files:
        for task in play_tasks(path):
            if _sends_token(task):
                count += 1
                if task.get("no_log") is not True:
                    problems.append(f"{path.name}: {task.get('name')!r} sends a token "
                                    "without no_log")
    assert count >= 2  # demo.yml's server and console polls
    assert not problems, "\n".join(problems)


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "stratus.conf"
    path.write_text(text)
    return Config.load(str(path))


def test_tls_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("STRATUS_"):
            monkeypatch.delenv(name)
    plain = Tls.from_config(_config(tmp_path, "[DEFAULT]\n"), "identity")
    assert not plain.enabled and plain.uvicorn_options() == {}

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    tls = Tls.from_config(_config(tmp_path, f"[DEFAULT]\ntls_cert_file = {cert}\n"
                                            f"tls_key_file = {key}\n"), "image")
    assert tls.enabled
    options = tls.uvicorn_options()
    assert options["ssl_certfile"] == str(cert) and options["ssl_keyfile"] == str(key)

    with pytest.raises(ConfigError, match="tls_key_file is set but tls_cert_file is empty"):
        Tls.from_config(_config(tmp_path, f"[DEFAULT]\ntls_key_file = {key}\n"), "image")
    with pytest.raises(ConfigError, match=r"\[network\] tls_cert_file=.*cannot be read"):
        Tls.from_config(_config(tmp_path, "[network]\ntls_cert_file = /nonexistent/c.pem\n"),
                        "network")


def test_tls12_context_refuses_older_versions() -> None:
    ctx = _tls12_context(None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_use_ca_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    use_ca_file("")
    assert "SSL_CERT_FILE" not in __import__("os").environ
    use_ca_file("/etc/stratus/tls/ca.crt")
    assert __import__("os").environ["SSL_CERT_FILE"] == "/etc/stratus/tls/ca.crt"
