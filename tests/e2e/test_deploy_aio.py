"""End-to-end test of the all-in-one deploy: playbooks/site.yml, then python-openstackclient.

Deploys Stratus on this machine with ``ansible-playbook -i inventories/aio playbooks/site.yml``
into a temporary prefix (every Stratus path under ``/tmp/stratus-e2e-*``, an unusual port,
Stratus's own supervisord) so it never clashes with a real deploy, checks that a second run
reports no change, drives the identity service with the real ``openstack`` client the way a
user would, and finally runs playbooks/teardown.yml and checks that nothing of ours is left
running.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFERRED_PORT = 15000
PLAYBOOK_TIMEOUT = 900


def _free_port(preferred: int) -> int:
    """The preferred port when nothing listens there, else a free one the kernel picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free TCP port")


def _tool(name: str) -> str:
    """A console script installed next to this interpreter (the test virtualenv)."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return found


@dataclass
class Deployment:
    """A Stratus deployed into a temporary prefix by the e2e test."""

    prefix: Path
    port: int
    admin_password: str
    extra_vars: dict[str, object]
    logs: Path

    @property
    def config_dir(self) -> Path:
        return self.prefix / "etc" / "stratus"

    @property
    def clouds_yaml(self) -> Path:
        return self.config_dir / "clouds.yaml"

    @property
    def pidfile(self) -> Path:
        return self.prefix / "run" / "stratus" / "supervisord.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run_playbook(deployment: Deployment, playbook: str, log_name: str) -> str:
    """Runs a playbook of this repository against the aio inventory; returns its output."""
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [
        _tool("ansible-playbook"),
        "-i",
        "inventories/aio",
        f"playbooks/{playbook}",
        "-e",
        json.dumps(deployment.extra_vars),
    ]
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PLAYBOOK_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    log = deployment.logs / log_name
    log.write_text(proc.stdout)
    print(f"{playbook} ({log_name}): exit {proc.returncode} in {elapsed:.1f}s, log {log}")
    assert proc.returncode == 0, (
        f"{playbook} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}"
    )
    return proc.stdout


def recap(output: str) -> dict[str, int]:
    """The counters of the PLAY RECAP line of the aio host."""
    match = re.search(r"^localhost\s*:\s*(.*)$", output.split("PLAY RECAP", 1)[-1], re.MULTILINE)
    assert match, f"no PLAY RECAP line for localhost in:\n{output[-3000:]}"
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def changed_tasks(output: str) -> list[str]:
    """Names of the tasks that reported a change (to explain a failed idempotence check)."""
    names: list[str] = []
    task = ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif line.startswith("changed:"):
            names.append(task)
    return names


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    engine: str = request.param
    if os.geteuid() != 0:
        pytest.skip("the all-in-one deploy installs packages and users: run as root")
    if shutil.which("apt-get") is None:
        pytest.skip("the all-in-one deploy targets Debian (apt-get not found)")

    prefix = Path(tempfile.mkdtemp(prefix=f"stratus-e2e-{engine}-", dir="/tmp"))
    prefix.chmod(0o755)  # the stratus service user must reach its directories below
    logs = Path(tempfile.mkdtemp(prefix="stratus-e2e-logs-", dir="/tmp"))
    port = _free_port(PREFERRED_PORT)
    # Deploy a snapshot of the package source, so that editing the working tree
    # while the test runs cannot make the second run (rightly) reinstall.
    source = logs / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    password = "e2e-" + secrets.token_urlsafe(12)
    # Test objects carry a test prefix: the PostgreSQL database and role are
    # stratus_e2e_<random>_identity, never a real deploy's stratus_identity.
    db_prefix = f"stratus_e2e_{secrets.token_hex(3)}_"
    extra_vars: dict[str, object] = {
        "stratus_prefix": str(prefix),
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": engine,
        "database_postgresql_name_prefix": db_prefix,
        "stratus_admin_password": password,
        "identity_port": port,
        # Off the default 9292, which a real deploy on this machine may hold.
        "image_store_port": _free_port(PREFERRED_PORT + 1),
        # Off the default 9696 for the same reason.
        "network_api_port": _free_port(PREFERRED_PORT + 2),
        "common_package_source": str(source),
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    }
    dep = Deployment(
        prefix=prefix, port=port, admin_password=password, extra_vars=extra_vars, logs=logs
    )
    try:
        yield dep
    finally:
        pid = None
        if dep.pidfile.exists():
            pid = int(dep.pidfile.read_text().strip())
        output = run_playbook(dep, "teardown.yml", "teardown.log")
        assert recap(output)["failed"] == 0
        if pid is not None:
            deadline = time.monotonic() + 30
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _pid_alive(pid), (
                f"Stratus's supervisord (pid {pid}) still runs after teardown"
            )
        assert not dep.pidfile.exists()
        assert not dep.config_dir.exists(), "teardown left the configuration directory"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.1", port)) != 0, (
                "identity still listens after teardown"
            )
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(deployment: Deployment) -> Deployment:
    """site.yml run twice: the first deploys, the second must change nothing."""
    first = run_playbook(deployment, "site.yml", "site-1.log")
    counts = recap(first)
    assert counts["failed"] == 0 and counts["unreachable"] == 0
    assert counts["changed"] > 0

    second = run_playbook(deployment, "site.yml", "site-2.log")
    counts = recap(second)
    assert counts["failed"] == 0
    assert counts["changed"] == 0, f"second run changed: {changed_tasks(second)}"
    return deployment


def openstack(
    deployment: Deployment, *args: str, cloud: bool = True, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    if cloud:
        env["OS_CLIENT_CONFIG_FILE"] = str(deployment.clouds_yaml)
    else:
        # With a single cloud in clouds.yaml the client would merge it into
        # explicit --os-* options; give it a file without clouds instead.
        empty = deployment.logs / "no-clouds.yaml"
        empty.write_text("clouds: {}\n")
        env["OS_CLIENT_CONFIG_FILE"] = str(empty)
    cmd = [_tool("openstack"), *(["--os-cloud", "stratus"] if cloud else []), *args]
    proc = subprocess.run(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{' '.join(args)} failed: {proc.stderr}"
    return proc


def openstack_json(deployment: Deployment, *args: str, cloud: bool = True) -> object:
    return json.loads(openstack(deployment, *args, "-f", "json", cloud=cloud).stdout)


def test_deploy_writes_admin_credentials(deployed: Deployment) -> None:
    for path in (deployed.clouds_yaml, deployed.config_dir / "openrc"):
        assert path.exists(), path
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} must be mode 0600"
    assert deployed.admin_password in deployed.clouds_yaml.read_text()
    with urllib.request.urlopen(f"{deployed.url}/healthcheck", timeout=10) as response:
        assert response.status == 200


def test_openstack_client_against_identity(deployed: Deployment) -> None:
    token = openstack_json(deployed, "token", "issue")
    assert isinstance(token, dict) and token["id"] and token["project_id"]

    project = openstack_json(deployed, "project", "create", "e2e-proj")
    assert isinstance(project, dict) and project["name"] == "e2e-proj"

    user_password = "e2e-user-" + secrets.token_urlsafe(8)
    user = openstack_json(
        deployed, "user", "create", "--password", user_password, "--project", "e2e-proj", "e2e-user"
    )
    assert isinstance(user, dict) and user["name"] == "e2e-user"

    openstack(deployed, "role", "add", "--project", "e2e-proj", "--user", "e2e-user", "member")

    assignments = openstack_json(deployed, "role", "assignment", "list", "--names")
    assert isinstance(assignments, list)
    assert any(
        a["Role"] == "member"
        and a["User"].split("@")[0] == "e2e-user"
        and a["Project"].split("@")[0] == "e2e-proj"
        for a in assignments
    ), assignments

    catalog = openstack_json(deployed, "catalog", "list")
    assert isinstance(catalog, list)
    assert any(service["Type"] == "identity" for service in catalog), catalog

    # The new user gets a token scoped to its project...
    user_auth = [
        "--os-auth-url", f"{deployed.url}/v3",
        "--os-identity-api-version", "3",
        "--os-username", "e2e-user",
        "--os-password", user_password,
        "--os-project-name", "e2e-proj",
        "--os-user-domain-id", "default",
        "--os-project-domain-id", "default",
    ]  # fmt: skip
    user_token = openstack_json(deployed, *user_auth, "token", "issue", cloud=False)
    assert isinstance(user_token, dict)
    assert user_token["project_id"] == project["id"]
    assert user_token["user_id"] == user["id"]

    # ...which works until the admin revokes it.
    token_auth = [
        "--os-auth-type", "token",
        "--os-token", user_token["id"],
        "--os-auth-url", f"{deployed.url}/v3",
        "--os-identity-api-version", "3",
        "--os-project-id", project["id"],
    ]  # fmt: skip
    openstack(deployed, *token_auth, "project", "show", project["id"], cloud=False)

    openstack(deployed, "token", "revoke", user_token["id"])

    refused = openstack(
        deployed, *token_auth, "project", "show", project["id"], cloud=False, check=False
    )
    assert refused.returncode != 0, "a revoked token was still accepted by the client"

    request = urllib.request.Request(
        f"{deployed.url}/v3/auth/tokens",
        headers={"X-Auth-Token": token["id"], "X-Subject-Token": user_token["id"]},
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code in (401, 404)
