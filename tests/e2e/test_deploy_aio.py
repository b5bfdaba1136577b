"""End-to-end test of the all-in-one deploy: playbooks/site.yml, then python-openstackclient.

Deploys Stratus on this machine with ``ansible-playbook -i inventories/aio playbooks/site.yml``
into a temporary prefix (every Stratus path under ``/tmp/stratus-e2e-*``, unusual ports,
Stratus's own supervisord, an external bridge ``snetex<hex>``) so it never clashes with a real
deploy, checks that a second run reports no change, drives the identity service with the real
``openstack`` client the way a user would, proves the network agent (registration, DHCP and
router namespaces, a fake VM's lease, port status, metadata through the proxies), and finally
runs playbooks/teardown.yml and checks that nothing of ours is left running.

The deploy (SQLite, TLS on) runs from the installed collection (issue 18): `make
collection`'s script builds the tarball, ``ansible-galaxy collection install`` puts it into an
empty collections path, and ``ansible-playbook stratus.cloud.site`` / ``stratus.cloud.teardown``
run from a temporary directory with only that path configured (no checkout on any path; the
roles install the ``stratus`` package the collection carries). PostgreSQL is deployed by the
object-store deploy (test_object_store_deploy.py, with plain http) and by molecule's multinode
scenario (test_molecule.py, three hosts); the checkout's playbooks, as ``make aio`` runs them,
by the session cloud (test_boot_aio.py). Until issue 11 this module deployed a second time
with PostgreSQL; those deploys now prove it, and its 5 minutes went to molecule.

The deploy is also an upgrade in place: before its first site.yml run the test plants
what a release before issue 9 left, the network agent's supervisor program under its old
name ``stratus-agent`` (running, with a stand-in for the old console script), and checks
that site.yml stopped and removed it and runs ``stratus-network-agent`` instead.

The deploy has its own deploy prefix (``y<random>s``), which every host object it makes
carries (namespaces ``<prefix>-qdhcp-<id>``, taps, bridges, nftables tables, libvirt
domains), and runs beside the boot module's cloud, which stays up with a guest as the
bystander (issue 16, tests/e2e/test_boot_aio.py); it also boots one tiny TCG guest beside
it, reaches it on a floating IP and deletes it. Only its site.yml and teardown.yml runs
take the flock on /tmp/stratus-e2e.lock (tests/e2e/e2e_support.py).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_support import free_external, playbook_lock

from netlab import FakeVM, Lab, nsx, sh
from stratus.contracts.network import tap_name

# A deploy's two site.yml runs count against its first test, and may wait for the playbook
# lock while other deploys (the bystander's, a developer's) run theirs.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFERRED_PORT = 15000
PLAYBOOK_TIMEOUT = 900
# the external network (the host is .1 on EXT_BRIDGE): a bridge name and /24 nothing on the
# host uses
EXT_BRIDGE, EXT_NET = free_external("snetex", 66)
NETWORK_AGENT = "stratus-network-agent"
OLD_NETWORK_AGENT = "stratus-agent"  # the network agent's program name before issue 9


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
    deploy_prefix: str = "st"
    network_port: int = 0
    # host objects the network agent made, checked again after teardown
    agent_namespaces: list[str] | None = None
    agent_pids: list[int] | None = None
    # whether the first site.yml run upgrades a planted deploy of an earlier release
    upgrade: bool = False
    # a directory holding ansible.cfg, inventory/ and collections/ with the installed
    # collection: the playbooks run from there by FQCN (None: the checkout's playbooks)
    collection_dir: Path | None = None
    # every API over https with the deploy's own CA (issue 13: the SQLite deploy)
    tls: bool = False

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
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA bundle the deploy's services verify each other with (TLS on)."""
        return self.config_dir / "tls" / "ca.crt"

    def urlopen(self, request: urllib.request.Request | str, timeout: float = 10
                ) -> Any:
        """urllib's urlopen, verifying the deploy's https with its CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    @property
    def old_agent_pidfile(self) -> Path:
        return self.logs / f"{OLD_NETWORK_AGENT}.pid"

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["supervisorctl", "--configuration", str(self.config_dir / "supervisord.conf"),
             *args], capture_output=True, text=True, check=False)


def plant_old_release(deployment: Deployment) -> None:
    """What a deploy of a release before issue 9 left on the host: the network agent's
    supervisor program under its old name, written as that release's role wrote it, and its
    console script (here a stand-in that records its pid and sleeps, so that supervisord,
    started by the first site.yml run, runs it until the network role stops it)."""
    venv_bin = deployment.prefix / "opt" / "stratus" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    script = venv_bin / OLD_NETWORK_AGENT
    script.write_text(f"#!/bin/sh\necho $$ > {deployment.old_agent_pidfile}\n"
                      "exec sleep 100000\n")
    script.chmod(0o755)
    programs = deployment.config_dir / "supervisor.d"
    programs.mkdir(parents=True)
    state = deployment.prefix / "var" / "lib" / "stratus"
    config = deployment.config_dir / "stratus.conf"
    log_dir = deployment.prefix / "var" / "log" / "stratus"
    (programs / f"{OLD_NETWORK_AGENT}.conf").write_text(
        "; Ansible managed\n"
        f"[program:{OLD_NETWORK_AGENT}]\n"
        f"command = {script} --config-file {config}\n"
        "user = root\n"
        f"directory = {state}\n"
        f'environment = HOME="{state}",STRATUS_CONFIG_FILE="{config}",'
        'STRATUS_SERVICE_FINGERPRINT="old-release"\n'
        "autostart = true\nautorestart = true\nstartsecs = 2\nstartretries = 5\n"
        "stopsignal = TERM\nstopwaitsecs = 20\nstopasgroup = true\nkillasgroup = true\n"
        "redirect_stderr = true\n"
        f"stdout_logfile = {log_dir}/{OLD_NETWORK_AGENT}.log\n")


def install_collection(workdir: Path) -> Path:
    """Builds the collection (scripts/build-collection.sh, what `make collection` runs),
    installs it into an empty collections path under ``workdir`` and writes an ansible.cfg
    naming only that path and a copy of the aio inventory the collection carries. Returns
    the directory to run ``ansible-playbook stratus.cloud.<name>`` from."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_GALAXY": _tool("ansible-galaxy")}
    subprocess.run([str(REPO / "scripts" / "build-collection.sh"), str(workdir / "dist")],
                   env=env, check=True, capture_output=True, text=True, timeout=300)
    (tarball,) = (workdir / "dist").glob("stratus-cloud-*.tar.gz")
    collections = workdir / "collections"
    collections.mkdir()
    # Away from the checkout's ansible.cfg, whose collections path links the checkout (an
    # install would find stratus.cloud there and do nothing).
    env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    subprocess.run([_tool("ansible-galaxy"), "collection", "install", "-p", str(collections),
                    str(tarball)], cwd=workdir, env=env, check=True, capture_output=True,
                   text=True, timeout=300)
    installed = collections / "ansible_collections" / "stratus" / "cloud"
    assert (installed / "roles" / "common" / "files" / "stratus-src.tar.gz").is_file(), (
        "the collection does not carry the stratus package"
    )
    assert not (installed / "src").exists() and not (installed / "pyproject.toml").exists()
    run_dir = workdir / "run"
    run_dir.mkdir()
    shutil.copytree(installed / "inventories" / "aio", run_dir / "inventory")
    (run_dir / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {collections}\n"
        "interpreter_python = auto_silent\n"
        "callback_result_format = yaml\n"
        "retry_files_enabled = false\n"
        "[ssh_connection]\n"
        "pipelining = true\n"
    )
    return run_dir


def run_playbook(deployment: Deployment, playbook: str, log_name: str) -> str:
    """Runs a playbook against the aio inventory, from the installed collection by FQCN
    when the deployment has one, else the checkout's; returns its output."""
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cwd = REPO
    cmd = [_tool("ansible-playbook"), "-i", "inventories/aio", f"playbooks/{playbook}"]
    if deployment.collection_dir is not None:
        cwd = deployment.collection_dir
        env["ANSIBLE_CONFIG"] = str(cwd / "ansible.cfg")
        env["ANSIBLE_COLLECTIONS_PATH"] = str(cwd.parent / "collections")
        env.pop("ANSIBLE_ROLES_PATH", None)
        name = playbook.removesuffix(".yml")
        cmd = [_tool("ansible-playbook"), "-i", "inventory", f"stratus.cloud.{name}"]
    cmd += ["-e", json.dumps(deployment.extra_vars)]
    started = time.monotonic()
    with playbook_lock():  # one site.yml/teardown.yml at a time; the clouds stay side by side
        proc = subprocess.run(
            cmd,
            cwd=cwd,
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


def _zombie(pid: int) -> bool:
    """An exited child that nobody reaped yet (this container's init does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    engine = "sqlite"
    if os.geteuid() != 0:
        pytest.skip("the all-in-one deploy installs packages and users: run as root")
    if shutil.which("apt-get") is None:
        pytest.skip("the all-in-one deploy targets Debian (apt-get not found)")

    prefix = Path(tempfile.mkdtemp(prefix=f"stratus-e2e-{engine}-", dir="/tmp"))
    prefix.chmod(0o755)  # the stratus service user must reach its directories below
    logs = Path(tempfile.mkdtemp(prefix="stratus-e2e-logs-", dir="/tmp"))
    port = _free_port(PREFERRED_PORT)
    password = "e2e-" + secrets.token_urlsafe(12)
    network_port = _free_port(PREFERRED_PORT + 2)
    metadata_port = _free_port(PREFERRED_PORT + 4)
    # Its own deploy prefix: beside the bystander cloud (and a user's), nothing is shared.
    deploy_prefix = "y" + secrets.token_hex(1) + engine[0]
    extra_vars: dict[str, object] = {
        "stratus_prefix": str(prefix),
        "stratus_deploy_prefix": deploy_prefix,
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": engine,
        "stratus_admin_password": password,
        "stratus_service_password": "e2e-svc-" + secrets.token_urlsafe(12),
        "stratus_metadata_shared_secret": "e2e-md-" + secrets.token_urlsafe(16),
        "identity_port": port,
        # Off the default 9292, which a real deploy on this machine may hold.
        "image_store_port": _free_port(PREFERRED_PORT + 1),
        # Off the default 9696 for the same reason.
        "network_api_port": network_port,
        "compute_api_port": _free_port(PREFERRED_PORT + 3),
        "metadata_port": metadata_port,
        # The volume role: its API off the default 8776, its tgtd's iSCSI portal off 3261
        # (the bystander cloud's tgtd holds its own).
        "volume_api_port": _free_port(PREFERRED_PORT + 5),
        "volume_storage_portal_port": _free_port(PREFERRED_PORT + 6),
        # Object storage (issue 14): off the default 8080.
        "object_store_port": _free_port(PREFERRED_PORT + 7),
        # its stratus-object-server: by default object_store_port + 1, which is the console
        # proxy's port here, so give it one of its own
        "object_store_server_port": _free_port(PREFERRED_PORT + 10),
        # Issue 15: the console proxy and the dashboard, off the defaults 6080 and 8000.
        "novncproxy_port": _free_port(PREFERRED_PORT + 8),
        "dashboard_port": _free_port(PREFERRED_PORT + 9),
        # the proxy -> stratus-metadata hop (https with TLS on; the guest's hop stays http)
        "network_agent_metadata_url": f"https://127.0.0.1:{metadata_port}",
        # Issue 13: TLS is on by default (every API over https from the deploy's own CA;
        # plain http is proven by the object-store deploy, test_object_store_deploy.py).
        "stratus_tls_enabled": True,
        # The all-in-one backend: kernel bridges and VXLAN (OVS here would need the
        # userspace datapath, about 30 times slower; see docs/agent.md).
        "network_agent_l2_backend": "linuxbridge",
        "network_external_bridge": EXT_BRIDGE,
        "network_external_cidr": f"{EXT_NET}.1/24",
        "network_agent_resync_interval": 3,
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    }
    try:
        collection_dir = install_collection(logs)
    except BaseException:
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        raise
    dep = Deployment(
        prefix=prefix, port=port, admin_password=password, extra_vars=extra_vars, logs=logs,
        network_port=network_port, upgrade=True, deploy_prefix=deploy_prefix,
        collection_dir=collection_dir, tls=True,
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
        # The network agent's host objects are gone with it.
        for ns in dep.agent_namespaces or []:
            assert not Path("/run/netns", ns).exists(), f"teardown left namespace {ns}"
        for agent_pid in dep.agent_pids or []:
            assert not _pid_alive(agent_pid) or _zombie(agent_pid), (
                f"teardown left process {agent_pid} (dnsmasq or metadata proxy)"
            )
        links = sh("ip", "-o", "link", "show")
        assert f" {EXT_BRIDGE}:" not in links, "teardown left the external bridge"
        ours = re.findall(rf"^\d+: ({re.escape(deploy_prefix)}-[^:@ ]+)", links, re.MULTILINE)
        assert ours == [], f"teardown left interfaces of the deploy: {ours}"
        netns = sh("ip", "netns", "list")
        assert f"{deploy_prefix}-" not in netns, f"teardown left namespaces:\n{netns}"
        left = subprocess.run(["pgrep", "-af", str(prefix)], capture_output=True, text=True,
                              check=False).stdout.strip()
        assert left == "", f"processes of the deploy still run after teardown:\n{left}"
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(scope="module")
def deployed(deployment: Deployment) -> Deployment:
    """site.yml run twice: the first deploys (over a planted earlier release on SQLite), the
    second must change nothing."""
    if deployment.upgrade:
        plant_old_release(deployment)
    first = run_playbook(deployment, "site.yml", "site-1.log")
    counts = recap(first)
    assert counts["failed"] == 0 and counts["unreachable"] == 0
    assert counts["changed"] > 0
    if deployment.collection_dir is not None:
        # no checkout to tar up: the package the collection carries was installed
        build = re.split(r"TASK \[(?:stratus\.cloud\.)?common : Build the source tarball",
                         first, maxsplit=1)
        assert len(build) == 2, "site.yml did not run the common role's install tasks"
        assert "skipping: [localhost]" in build[1].split("TASK [", 1)[0], (
            "site.yml built a tarball from a checkout instead of the collection's"
        )

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
        if deployment.tls:
            env["OS_CACERT"] = str(deployment.ca_file)
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
    with deployed.urlopen(f"{deployed.url}/healthcheck") as response:
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
    ]
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
    ]
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
        deployed.urlopen(request)
    assert excinfo.value.code in (401, 404)


def test_tls_on_every_endpoint(deployed: Deployment) -> None:
    """Issue 13, the SQLite deploy with common_tls_enabled: every catalog URL is https, the
    client works with the deploy's CA (clouds.yaml names it) and fails without it, a plain
    http request to an API gets no answer, TLS 1.1 is refused, the certificate names the
    host's addresses, and the keys are not world-readable."""
    endpoints = openstack_json(deployed, "endpoint", "list")
    assert isinstance(endpoints, list) and endpoints
    urls = [str(e["URL"]) for e in endpoints]
    assert all(u.startswith("https://") for u in urls), urls
    openstack(deployed, "server", "list")

    # Without the CA (the same cloud, no cacert): a certificate error.
    plain = deployed.logs / "clouds-no-ca.yaml"
    plain.write_text("".join(line for line in deployed.clouds_yaml.read_text().splitlines(True)
                             if "cacert" not in line))
    # A client with the public CAs only (certifi): none of the variables that point it at
    # the host's bundle, which holds the deploy's CA (the role put it there).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k not in (
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["OS_CLIENT_CONFIG_FILE"] = str(plain)
    refused = subprocess.run([_tool("openstack"), "--os-cloud", "stratus", "server", "list"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or \
        "certificate verify failed" in refused.stderr, refused.stderr[-2000:]

    # Plain http to the identity port gets no HTTP answer.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{deployed.port}/healthcheck", timeout=10)

    # openssl s_client: TLS 1.2 works and names the host; TLS 1.1 (allowed on the client's
    # side by SECLEVEL=0) is refused by the server.
    def s_client(*opts: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{deployed.port}",
                               "-CAfile", str(deployed.ca_file), *opts],
                              input="", capture_output=True, text=True, timeout=30,
                              check=False)

    ok = s_client("-tls1_2", "-verify_return_error", "-verify_ip", "127.0.0.1")
    assert ok.returncode == 0 and "Verify return code: 0 (ok)" in ok.stdout, ok.stdout[-2000:]
    old = s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert old.returncode != 0, "a TLS 1.1 handshake was accepted"
    names = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                            str(deployed.config_dir / "tls" / "stratus.crt")],
                           capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in names and "DNS:localhost" in names, names

    # Secrets: the host key root:stratus 0640, the CA key 0600 under a 0700 directory.
    key = (deployed.config_dir / "tls" / "stratus.key").stat()
    assert key.st_mode & 0o777 == 0o640 and key.st_uid == 0, oct(key.st_mode)
    ca_dir = deployed.config_dir / "tls-ca"
    assert ca_dir.stat().st_mode & 0o777 == 0o700
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600


def test_openstack_volume_create_and_delete(deployed: Deployment) -> None:
    """The volume role: `openstack volume create --size 1` is made by the storage agent
    (its file in the pool) and reaches available; `volume delete` removes the file."""
    vol = openstack_json(deployed, "volume", "create", "--size", "1", "e2e-vol")
    assert isinstance(vol, dict) and vol["size"] == 1, vol
    pool = deployed.prefix / "var" / "lib" / "stratus" / "volumes"
    path = pool / f"{deployed.deploy_prefix}-volume-{vol['id']}.raw"
    deadline = time.monotonic() + 120
    status = vol["status"]
    while status != "available" and time.monotonic() < deadline:
        assert status == "creating", vol
        time.sleep(1)
        shown = openstack_json(deployed, "volume", "show", vol["id"])
        assert isinstance(shown, dict)
        status = shown["status"]
    assert status == "available", f"the volume stayed {status}"
    assert path.stat().st_size == 1 << 30
    openstack(deployed, "volume", "delete", vol["id"])
    while path.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not path.exists(), "volume delete left the volume's file"
    while time.monotonic() < deadline:
        listed = openstack_json(deployed, "volume", "list")
        assert isinstance(listed, list)
        if all(v["ID"] != vol["id"] for v in listed):
            break
        time.sleep(1)
    else:
        raise AssertionError("the deleted volume is still listed")


def test_upgrade_replaces_the_old_network_agent_program(deployed: Deployment) -> None:
    programs = deployed.config_dir / "supervisor.d"
    assert not (programs / f"{OLD_NETWORK_AGENT}.conf").exists()
    assert (programs / f"{NETWORK_AGENT}.conf").exists()
    old = deployed.supervisorctl("status", OLD_NETWORK_AGENT).stdout
    assert "no such process" in old, f"supervisord still knows {OLD_NETWORK_AGENT}: {old}"
    status = deployed.supervisorctl("status").stdout
    assert re.search(rf"^{NETWORK_AGENT}\s+RUNNING", status, re.MULTILINE), status
    if deployed.upgrade:
        # The earlier release's agent ran under supervisord until site.yml stopped it.
        assert deployed.old_agent_pidfile.exists(), "the planted old agent never ran"
        old_pid = int(deployed.old_agent_pidfile.read_text().strip())
        assert not _pid_alive(old_pid) or _zombie(old_pid), (
            f"{OLD_NETWORK_AGENT} (pid {old_pid}) still runs after the upgrade")


# --- the network agent ---------------------------------------------------------------------
def wait_for(what: str, check: object, timeout: float = 60.0, interval: float = 0.5,
             deployment: Deployment | None = None) -> object:
    """Polls ``check()`` until it returns something truthy; fails saying what never came
    (with the end of the agent's log when ``deployment`` is given)."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            log = ""
            if deployment is not None:
                path = deployment.prefix / "var" / "log" / "stratus" / f"{NETWORK_AGENT}.log"
                log = path.read_text()[-4000:] if path.exists() else f"(no {path})"
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{log}")
        time.sleep(interval)


def network_api(deployment: Deployment, token: str, method: str, path: str) -> object:
    request = urllib.request.Request(
        f"{deployment.scheme}://127.0.0.1:{deployment.network_port}{path}", method=method,
        headers={"X-Auth-Token": token, "Accept": "application/json"})
    with deployment.urlopen(request) as response:
        return json.loads(response.read())


def metadata_status(vm_ns: str) -> tuple[int, str]:
    """The HTTP status (and body) a fake VM gets from 169.254.169.254; 0 when no answer."""
    script = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen('http://169.254.169.254/openstack/latest/"
        "meta_data.json', timeout=10)\n"
        "    print(r.status, r.read(200).decode(errors='replace'))\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code, e.read(200).decode(errors='replace'))\n"
        "except OSError as e:\n"
        "    print(0, e)\n")
    out = nsx(vm_ns, sys.executable, "-c", script, check=False, timeout=30).strip()
    code, _, body = out.partition(" ")
    return (int(code) if code.isdigit() else 0), body


def test_network_agent_serves_a_fake_vm(deployed: Deployment) -> None:
    supervisorctl = [
        "supervisorctl", "--configuration", str(deployed.config_dir / "supervisord.conf"),
        "status", NETWORK_AGENT]
    status = subprocess.run(supervisorctl, capture_output=True, text=True, check=False)
    assert "RUNNING" in status.stdout, f"{NETWORK_AGENT} is not running: {status.stdout}"

    token = openstack_json(deployed, "token", "issue")
    assert isinstance(token, dict)
    admin = str(token["id"])
    # The agent registered its host itself (level-triggered, at start and every pass).
    hosts = network_api(deployed, admin, "GET", "/v2.0/stratus-agent/hosts")
    assert isinstance(hosts, dict)
    assert [(h["host"], h["network_node"]) for h in hosts["hosts"]] == [("localhost", True)]

    # The external network on the bridge the role made, a tenant network, a router.
    openstack(deployed, "network", "create", "--external", "--provider-network-type", "flat",
              "--provider-physical-network", "public", "public")
    openstack(deployed, "subnet", "create", "--network", "public", "--no-dhcp",
              "--subnet-range", f"{EXT_NET}.0/24", "--gateway", f"{EXT_NET}.1",
              "--allocation-pool", f"start={EXT_NET}.100,end={EXT_NET}.150", "public-subnet")
    net = openstack_json(deployed, "network", "create", "e2e-net")
    assert isinstance(net, dict)
    openstack(deployed, "subnet", "create", "--network", "e2e-net",
              "--subnet-range", "192.168.66.0/24", "e2e-subnet")
    router = openstack_json(deployed, "router", "create", "e2e-router")
    assert isinstance(router, dict)
    openstack(deployed, "router", "set", "--external-gateway", "public", "e2e-router")
    openstack(deployed, "router", "add", "subnet", "e2e-router", "e2e-subnet")
    qdhcp = f"{deployed.deploy_prefix}-qdhcp-{net['id']}"
    qrouter = f"{deployed.deploy_prefix}-qrouter-{router['id']}"
    deployed.agent_namespaces = [qdhcp, qrouter]
    state_dir = deployed.prefix / "var" / "lib" / "stratus-agent"
    pidfile = state_dir / "dhcp" / qdhcp / "pid"  # dnsmasq's files are named after its namespace
    wait_for("the qdhcp and qrouter namespaces and dnsmasq", lambda: (
        Path("/run/netns", qdhcp).exists() and Path("/run/netns", qrouter).exists()
        and pidfile.exists()), timeout=90, deployment=deployed)
    dnsmasq = int(pidfile.read_text().strip())
    assert "dnsmasq" in Path(f"/proc/{dnsmasq}/cmdline").read_text()
    deployed.agent_pids = [dnsmasq] + [
        int(p.read_text().strip()) for p in (state_dir / "metadata").glob("*.pid")]
    # DHCP and router ports go ACTIVE once their namespace devices are up.
    wait_for("the DHCP and router ports to be ACTIVE", lambda: all(
        p["Status"] == "ACTIVE" for p in openstack_json(  # type: ignore[union-attr]
            deployed, "port", "list", "--network", "e2e-net", "--long")), deployment=deployed)
    # The router's gateway on the external network answers from the host through the bridge.
    gateway = openstack_json(deployed, "router", "show", "e2e-router")
    assert isinstance(gateway, dict)
    info = gateway["external_gateway_info"]
    gw_ip = (info if isinstance(info, dict) else json.loads(info))[
        "external_fixed_ips"][0]["ip_address"]
    wait_for(f"the router gateway {gw_ip} to answer ping through {EXT_BRIDGE}", lambda: (
        subprocess.run(["ping", "-c", "1", "-W", "1", gw_ip], capture_output=True,
                       check=False).returncode == 0), timeout=30)

    # A fake VM: its port bound to this host, a veth named like the tap with its MAC.
    port = openstack_json(deployed, "port", "create", "--network", "e2e-net",
                          "--host", "localhost", "--device-owner", "compute:nova", "e2e-vm")
    assert isinstance(port, dict) and port["status"] == "DOWN"
    lab = Lab()
    try:
        vm_ns = lab.netns(f"snet-e2e-{secrets.token_hex(3)}")
        tap = tap_name(deployed.deploy_prefix, port["id"])
        sh("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", vm_ns)
        sh("ip", "-n", vm_ns, "link", "set", "eth0", "address", port["mac_address"], "up")
        sh("ip", "link", "set", tap, "up")
        vm = FakeVM(vm_ns, "", tap, port["mac_address"])
        wait_for("the fake VM's port to be ACTIVE", lambda: openstack_json(
            deployed, "port", "show", port["id"])["status"] == "ACTIVE",  # type: ignore[index]
            deployment=deployed)
        fixed = port["fixed_ips"][0]["ip_address"] if isinstance(port["fixed_ips"], list) \
            else re.search(r"ip_address='([\d.]+)'", str(port["fixed_ips"])).group(1)  # type: ignore[union-attr]
        assert wait_for("a DHCP lease", lambda: lab.dhcp(vm), timeout=60,
                        deployment=deployed) == fixed
        # Metadata through the DHCP namespace's proxy (option 121 route): stratus-metadata
        # checked the signature (else 403/400) and found no instance there (404).
        code, body = metadata_status(vm_ns)
        assert code == 404, (code, body)
        # ... and through the router's proxy when the guest routes it via its gateway.
        nsx(vm_ns, "ip", "route", "del", "169.254.169.254/32")
        nsx(vm_ns, "ip", "route", "replace", "default", "via", "192.168.66.1")
        code, body = metadata_status(vm_ns)
        assert code == 404, (code, body)
        # Unplugged: the port goes DOWN again.
        sh("ip", "link", "delete", tap)
        wait_for("the port to go DOWN", lambda: openstack_json(
            deployed, "port", "show", port["id"])["status"] == "DOWN")  # type: ignore[index]
    finally:
        lab.cleanup()


def test_a_real_guest_boots_and_goes_beside_the_bystander(deployed: Deployment) -> None:
    """Issue 16: the other deploys boot too. The SQLite deploy (another deploy prefix
    than the boot module's bystander cloud) boots one tiny TCG guest on the network of the
    fake-VM test, reaches it on a floating IP from the host, and deletes it: its domain
    carries this deploy's prefix, and nothing of the guest stays (the bystander's final
    check sees that none of this touched its cloud)."""
    tiny = subprocess.run(["bash", str(REPO / "tests" / "images" / "build-tiny.sh")],
                          capture_output=True, text=True, timeout=600, check=True)
    image = Path(tiny.stdout.strip().splitlines()[-1])
    openstack(deployed, "image", "create", "--disk-format", "qcow2", "--container-format",
              "bare", "--file", str(image), "e2e-tiny")
    openstack(deployed, "security", "group", "create", "e2e-icmp")
    openstack(deployed, "security", "group", "rule", "create", "--protocol", "icmp",
              "--remote-ip", "0.0.0.0/0", "e2e-icmp")
    server = openstack_json(deployed, "server", "create", "--image", "e2e-tiny", "--flavor",
                            "m1.tiny", "--network", "e2e-net", "--security-group", "e2e-icmp",
                            "--config-drive", "true", "--wait", "e2e-guest")
    assert isinstance(server, dict) and server["status"] == "ACTIVE", server
    fip = openstack_json(deployed, "floating", "ip", "create", "public")
    assert isinstance(fip, dict)
    address = str(fip["floating_ip_address"])
    openstack(deployed, "server", "add", "floating", "ip", "e2e-guest", address)
    domains = sh("virsh", "-c", "qemu:///system", "list", "--name").split()
    ours = [d for d in domains if d.startswith(f"{deployed.deploy_prefix}-instance-")]
    assert len(ours) == 1, domains
    wait_for(f"the guest to answer ping on its floating IP {address}", lambda: (
        subprocess.run(["ping", "-c", "1", "-W", "1", address], capture_output=True,
                       check=False).returncode == 0), timeout=240, interval=2,
             deployment=deployed)
    openstack(deployed, "server", "delete", "--wait", "e2e-guest")
    wait_for("the guest's domain to go", lambda: ours[0] not in sh(
        "virsh", "-c", "qemu:///system", "list", "--all", "--name").split(), timeout=60)
    openstack(deployed, "floating", "ip", "delete", address)
