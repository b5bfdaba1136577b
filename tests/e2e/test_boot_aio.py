"""End-to-end boot on the all-in-one cloud: site.yml, then real guests through the modules and
python-openstackclient, the compute agent killed mid-boot, a Debian guest with real cloud-init,
then teardown.yml.

The whole cloud is deployed with ``playbooks/site.yml`` into a temporary prefix (every Stratus
path under ``/tmp/sdep-e2e-*``, ports off the defaults, Stratus's own supervisord, the
linuxbridge network backend, a VXLAN range, an external bridge ``sdepex<hex>`` with its own
free 172.24.X.0/24 (e2e_support.free_external), and its own deploy prefix ``z<random>``,
which every host object of the deploy carries: namespaces, bridges, taps, nftables tables,
libvirt domains ``z...-instance-<id>``), so it never clashes with a real deploy or another
test. Guests run under TCG (the role detects that KVM cannot boot them here).

The cloud is also the suite's bystander (issue 16): it is deployed once per session, its last
test here boots a guest that stays up and snapshots the cloud's host objects; the other e2e
modules then deploy, churn and tear down their clouds beside it, and
test_bystander_is_unchanged_by_the_other_deploys (moved after them by tests/e2e/conftest.py)
checks that the guest still answers on its floating IP, the objects are unchanged and the
agents removed nothing, then tears the cloud down. Only the site.yml/teardown.yml runs take
the flock on /tmp/stratus-e2e.lock (tests/e2e/e2e_support.py), so deploys stand side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_support import (
    HostObjects,
    free_external,
    free_ports,
    log_size,
    new_log_lines,
    playbook_lock,
    removals,
)

from helpers import SystemLibvirt
from stratus.contracts.network import tap_name

# The module's deploy (two site.yml runs) and teardown count against the test that sets
# them up / the last one; the whole module stays under 15 minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOGS_KEPT = Path("/tmp/sdep-e2e-last-logs")
PLAYBOOK_TIMEOUT = 1200
# A bridge name and /24 nothing on the host uses (a leftover of an interrupted run would
# otherwise be adopted, and kept by the teardown as another deploy's).
EXT_BRIDGE, EXT_NET = free_external("sdepex", 77)
EXT_CIDR = f"{EXT_NET}.0/24"
EXT_GATEWAY = f"{EXT_NET}.1"
TENANT_CIDR = "192.168.77.0/24"
READY = "STRATUS-GUEST: ready"
SSH_OPTS = [
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    if check:
        assert done.returncode == 0, f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr}"
    return done


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
    """Polls probe until it returns something true; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def recap(output: str) -> dict[str, int]:
    match = re.search(r"^localhost\s*:\s*(.*)$", output.split("PLAY RECAP", 1)[-1], re.MULTILINE)
    assert match, f"no PLAY RECAP line for localhost in:\n{output[-3000:]}"
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def changed_tasks(output: str) -> list[str]:
    names: list[str] = []
    task = ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif line.startswith("changed:"):
            names.append(task)
    return names


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




@dataclass
class Cloud:
    """The all-in-one cloud this module deployed into a temporary prefix."""

    prefix: Path
    work: Path
    ports: dict[str, int]
    extra_vars: dict[str, Any]
    deploy_prefix: str
    key: Path
    _token: tuple[str, dict[str, str], float] | None = field(default=None, repr=False)
    # tears the cloud down (once); the session fixture and the bystander check call it
    close: Callable[[], None] = field(default=lambda: None, repr=False)
    # the bystander's guest and what the host held when it was up (test_bystander_*)
    bystander: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def domain_prefix(self) -> str:
        """The compute role's default: ``<deploy prefix>-instance-``."""
        return f"{self.deploy_prefix}-instance-"

    def tap(self, port_id: str) -> str:
        return tap_name(self.deploy_prefix, port_id)

    @property
    def config_dir(self) -> Path:
        return self.prefix / "etc" / "stratus"

    @property
    def clouds_yaml(self) -> Path:
        return self.config_dir / "clouds.yaml"

    @property
    def cacert(self) -> str | None:
        """The CA the cloud's https is verified with (clouds.yaml ``cacert``; TLS is on by
        default), None for a plain-http cloud."""
        entry = yaml.safe_load(self.clouds_yaml.read_text())["clouds"]["stratus"]
        return str(entry["cacert"]) if entry.get("cacert") else None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify`` for this cloud: its own CA, never unverified."""
        ca = self.cacert
        return ssl.create_default_context(cafile=ca) if ca else True

    def url(self, name: str, path: str = "") -> str:
        """The root URL of the dashboard or the console proxy (``ports`` name) on this host,
        with the scheme of clouds.yaml's identity URL."""
        auth_url = yaml.safe_load(self.clouds_yaml.read_text())["clouds"]["stratus"]["auth"][
            "auth_url"]
        scheme = str(auth_url).split("://", 1)[0]
        return f"{scheme}://127.0.0.1:{self.ports[name]}{path}"

    @property
    def instances(self) -> Path:
        return self.prefix / "var" / "lib" / "stratus" / "instances"

    @property
    def agent_state(self) -> Path:
        return self.prefix / "var" / "lib" / "stratus-agent"

    @property
    def pidfile(self) -> Path:
        return self.prefix / "run" / "stratus" / "supervisord.pid"

    # ---- Ansible -----------------------------------------------------------------------
    def ansible(self, playbook: Path | str, log_name: str, *args: str,
                lock: bool = False) -> str:
        """Runs a playbook; ``lock``: under the e2e playbook lock (site.yml, teardown.yml)."""
        with playbook_lock() if lock else contextlib.nullcontext():
            return self._ansible(playbook, log_name, *args)

    def _ansible(self, playbook: Path | str, log_name: str, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OS_"))}
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0",
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories" / "aio"),
             str(playbook), "-e", json.dumps(self.extra_vars), *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=PLAYBOOK_TIMEOUT, check=False,
        )
        (self.work / log_name).write_text(done.stdout)
        print(f"{playbook} ({log_name}): exit {done.returncode} in "
              f"{time.monotonic() - started:.1f}s")
        assert done.returncode == 0, f"{playbook} failed:\n{done.stdout[-8000:]}"
        return done.stdout

    def play(self, tasks: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], str]:
        """Runs tasks on localhost (each registered as r<i>); returns the results and output."""
        out = self.work / f"{name}.json"
        body = [{**task, "register": f"r{i}"} for i, task in enumerate(tasks)]
        names = ", ".join(f"'r{i}': r{i}" for i in range(len(tasks)))
        body.append({"name": "Save the results", "ansible.builtin.copy": {
            "content": "{{ {" + names + "} | to_json }}", "dest": str(out), "mode": "0600"},
            "changed_when": False})
        playbook = self.work / f"{name}.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": name, "hosts": "localhost", "gather_facts": False, "tasks": body,
        }], sort_keys=False))
        output = self.ansible(playbook, f"{name}.log")
        return json.loads(out.read_text()), output

    # ---- the APIs, as the admin of clouds.yaml -----------------------------------------
    def token(self) -> tuple[str, dict[str, str]]:
        if self._token is not None and time.monotonic() - self._token[2] < 600:
            return self._token[0], self._token[1]
        auth = yaml.safe_load(self.clouds_yaml.read_text())["clouds"]["stratus"]["auth"]
        resp = httpx.post(f"{auth['auth_url'].rstrip('/')}/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "domain": {"id": "default"},
                "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}},
        }}, timeout=30, verify=self.verify)
        assert resp.status_code == 201, resp.text
        endpoints = {}
        for service in resp.json()["token"]["catalog"]:
            for endpoint in service["endpoints"]:
                if endpoint["interface"] == "public":
                    endpoints[service["type"]] = endpoint["url"].rstrip("/")
        self._token = (resp.headers["X-Subject-Token"], endpoints, time.monotonic())
        return self._token[0], self._token[1]

    def api(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        token, endpoints = self.token()
        headers = {"X-Auth-Token": token, **kwargs.pop("headers", {})}
        return httpx.request(method, endpoints[service] + path, headers=headers, timeout=60,
                             verify=self.verify,
                             **kwargs)

    def server(self, server_id: str) -> dict[str, Any] | None:
        resp = self.api("GET", "compute", f"/servers/{server_id}")
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["server"])

    def console(self, server_id: str) -> str:
        resp = self.api("POST", "compute", f"/servers/{server_id}/action",
                        json={"os-getConsoleOutput": {}})
        if resp.status_code != 200:
            return ""
        return str(resp.json().get("output") or "")

    def wait_console(self, server_id: str, needle: str, timeout: float = 240) -> str:
        return str(wait_for(f"{needle!r} on the console of {server_id}",
                            lambda: (lambda c: c if needle in c else "")(self.console(server_id)),
                            timeout, 3))

    def server_ports(self, server_id: str) -> list[dict[str, Any]]:
        resp = self.api("GET", "network", "/v2.0/ports", params={"device_id": server_id})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["ports"])

    def network_id(self, name: str) -> str:
        resp = self.api("GET", "network", "/v2.0/networks", params={"name": name})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["networks"][0]["id"])

    def router_id(self, name: str) -> str:
        resp = self.api("GET", "network", "/v2.0/routers", params={"name": name})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["routers"][0]["id"])

    # ---- python-openstackclient --------------------------------------------------------
    def openstack(self, *args: str, fmt: bool = True, check: bool = True,
                  timeout: float = 300) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        cmd = [str(BIN / "openstack"), "--os-cloud", "stratus", *args, *(["-f", "json"] if fmt
                                                                          else [])]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        if check:
            assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
        if not fmt:
            return done
        return json.loads(done.stdout) if done.stdout.strip() else None

    # ---- the host --------------------------------------------------------------------
    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("supervisorctl", "--configuration", str(self.config_dir / "supervisord.conf"),
                   *args, check=False)

    def domains(self) -> list[str]:
        out = run("virsh", "-c", "qemu:///system", "list", "--all", "--name").stdout
        return [name for name in out.split() if name.startswith(self.domain_prefix)]

    def ssh(self, address: str, command: str, user: str = "root",
            check: bool = True) -> subprocess.CompletedProcess[str]:
        done = run("ssh", "-i", str(self.key), *SSH_OPTS, f"{user}@{address}", command,
                   check=False, timeout=90)
        if check:
            assert done.returncode == 0, f"ssh {address} {command!r}: {done.stderr}{done.stdout}"
        return done

    def wait_ssh(self, address: str, user: str = "root", timeout: float = 120) -> None:
        wait_for(f"SSH on {address}",
                 lambda: self.ssh(address, "true", user=user, check=False).returncode == 0,
                 timeout, 3)

    def host_has_device(self, name: str) -> bool:
        return run("ip", "link", "show", "dev", name, check=False).returncode == 0

    def instance_leftovers(self) -> list[str]:
        """Server files under instances_path (the agent's _base cache and empty _state aside)."""
        left = [p.name for p in self.instances.iterdir() if not p.name.startswith("_")]
        state = self.instances / "_state"
        if state.exists():
            left += [f"_state/{p.name}" for p in state.iterdir()]
        return left

    def wait_device_gone(self, name: str, timeout: float = 60) -> None:
        wait_for(f"{name} to go", lambda: not self.host_has_device(name), timeout)

    def wait_dhcp_gone(self, needle: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.agent_files_mention(needle):
            assert time.monotonic() < deadline, (
                f"DHCP entries of {needle} still in {self.agent_files_mention(needle)}")
            time.sleep(2)

    def netns(self) -> set[str]:
        out = run("ip", "netns", "list").stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    def agent_files_mention(self, needle: str, leases: bool = False) -> list[str]:
        """The network agent's dnsmasq hosts and opts files naming needle, or with ``leases``
        its dnsmasq lease files (dnsmasq's own log is not an entry)."""
        found = []
        for path in self.agent_state.rglob("*"):
            if path.is_file() and path.name in (("leases",) if leases else ("hosts", "opts")):
                try:
                    text = path.read_text(errors="replace").lower()
                    if re.search(re.escape(needle.lower()) + r"(?![0-9a-f])", text):
                        found.append(str(path))
                except OSError:
                    continue
        return found


def fixed_ip(server: dict[str, Any]) -> str:
    for addresses in server["addresses"].values():
        for address in addresses:
            if address.get("OS-EXT-IPS:type", "fixed") == "fixed":
                return str(address["addr"])
    raise AssertionError(f"no fixed address in {server['addresses']}")


def deploy_cloud() -> Iterator[Cloud]:
    """The cloud, once per session: it stays up beside the other e2e modules' deploys (the
    bystander) until test_bystander_is_unchanged_by_the_other_deploys tears it down. It is
    the session fixture ``cloud`` of tests/e2e/conftest.py, so that test_volumes_aio.py uses
    the same deploy."""
    if os.geteuid() != 0:
        pytest.skip("the all-in-one deploy installs packages, runs libvirt guests: run as root")
    if shutil.which("apt-get") is None:
        pytest.skip("the all-in-one deploy targets Debian (apt-get not found)")
    libvirt = SystemLibvirt()
    libvirt.ensure()
    tiny = run("bash", str(REPO / "tests" / "images" / "build-tiny.sh"), timeout=600)
    assert Path(tiny.stdout.strip().splitlines()[-1]).exists()

    # z never occurs in a hex id: nothing of another deploy reads as this deploy's.
    deploy_prefix = "z" + secrets.token_hex(2)[:3]
    prefix = Path(tempfile.mkdtemp(prefix="sdep-e2e-", dir="/tmp"))
    prefix.chmod(0o755)  # the stratus and libvirt-qemu users must reach the directories below
    work = Path(tempfile.mkdtemp(prefix="sdep-e2e-work-", dir="/tmp"))
    source = work / "source"  # a snapshot: edits of the tree during the test do not reach it
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    key = work / "id_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sdep-e2e", "-f", str(key))
    names = ("identity", "image", "network", "compute", "metadata", "volume", "iscsi", "object",
             "object_server", "novncproxy", "dashboard")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    extra_vars: dict[str, Any] = {
        "stratus_prefix": str(prefix),
        "stratus_process_manager": "supervisor",
        "stratus_database_engine": "sqlite",
        "stratus_admin_password": "e2e-" + secrets.token_urlsafe(12),
        "stratus_service_password": "e2e-svc-" + secrets.token_urlsafe(12),
        "stratus_metadata_shared_secret": "e2e-md-" + secrets.token_urlsafe(16),
        "identity_port": ports["identity"],
        "image_store_port": ports["image"],
        "network_api_port": ports["network"],
        "compute_api_port": ports["compute"],
        "metadata_port": ports["metadata"],
        # the volume role: its API and its tgtd's iSCSI portal on ports of this cloud's own
        "volume_api_port": ports["volume"],
        "volume_storage_portal_port": ports["iscsi"],
        "object_store_port": ports["object"],
        # its own port for stratus-object-server (the default, object_store_port + 1, may be
        # one of the other free ports picked here)
        "object_store_server_port": ports["object_server"],
        # issue 15: the console proxy and the dashboard of this cloud
        "novncproxy_port": ports["novncproxy"],
        "novncproxy_public_host": "127.0.0.1",
        "dashboard_port": ports["dashboard"],
        # the proxy -> stratus-metadata hop: https (TLS is on by default; the guest's hop
        # to 169.254.169.254 stays http)
        "network_agent_metadata_url": f"https://127.0.0.1:{ports['metadata']}",
        "network_agent_l2_backend": "linuxbridge",
        "network_vxlan_vni_ranges": "7700:7799",
        "network_external_bridge": EXT_BRIDGE,
        "network_external_cidr": f"{EXT_GATEWAY}/24",
        "network_agent_resync_interval": 5,
        # every host object of the deploy carries it; the domain prefix derives from it
        "stratus_deploy_prefix": deploy_prefix,
        "compute_agent_resync_interval": 5,
        # libvirtd is the machine's (ensure_libvirtd): other tests use it too.
        "compute_agent_libvirt_manager": "external",
        "common_package_source": str(source),
        "identity_clouds_yaml_paths": [str(prefix / "etc" / "stratus" / "clouds.yaml")],
    }
    cloud = Cloud(prefix, work, ports, extra_vars, deploy_prefix, key)
    supervisord_pid: int | None = None
    closed = False

    def close() -> None:
        nonlocal closed, supervisord_pid
        if closed:
            return
        closed = True
        # The services' logs outlive the run (teardown removes the prefix): the last run's
        # are kept in LOGS_KEPT for whoever has to find out why a test failed.
        shutil.rmtree(LOGS_KEPT, ignore_errors=True)
        if (prefix / "var" / "log" / "stratus").exists():
            shutil.copytree(prefix / "var" / "log" / "stratus", LOGS_KEPT)
            for log in work.glob("*.log"):
                shutil.copy2(log, LOGS_KEPT / log.name)
        if supervisord_pid is None and cloud.pidfile.exists():
            supervisord_pid = int(cloud.pidfile.read_text().strip())
        output = cloud.ansible(REPO / "playbooks" / "teardown.yml", "teardown.log", lock=True)
        assert recap(output)["failed"] == 0
        if supervisord_pid is not None:
            wait_for("supervisord to exit", lambda: not pid_alive(supervisord_pid), 60, 0.5)
        assert cloud.domains() == [], "teardown left libvirt domains of ours"
        assert not cloud.config_dir.exists(), "teardown left the configuration directory"
        for name, port in ports.items():
            assert not listening(port), f"{name} still listens on {port} after teardown"
        left = run("pgrep", "-af", str(prefix), check=False).stdout.strip()
        assert left == "", f"processes of the deploy still run after teardown:\n{left}"
        assert not cloud.host_has_device(EXT_BRIDGE), "teardown left the external bridge"
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        libvirt.stop()

    cloud.close = close
    try:
        first = cloud.ansible(REPO / "playbooks" / "site.yml", "site-1.log", lock=True)
        assert recap(first)["failed"] == 0 and recap(first)["changed"] > 0
        supervisord_pid = int(cloud.pidfile.read_text().strip())
        # A second site.yml run must change nothing: tests/e2e/test_deploy_aio.py checks that
        # (on SQLite and PostgreSQL); this module keeps its time for the guests.
        yield cloud
    finally:
        close()


def test_deploy_detects_tcg_and_registers_the_host(cloud: Cloud) -> None:
    conf = (cloud.config_dir / "stratus.conf").read_text()
    assert re.search(r"^virt_type = qemu$", conf, re.MULTILINE), "virt_type must resolve to qemu"
    for section in ("[compute]", "[compute_agent]", "[metadata]"):
        assert section in conf
    resp = wait_for("the compute host to report", lambda: (lambda r: r if r.status_code == 200
                    and r.json()["hypervisors"] else None)(
                        cloud.api("GET", "compute", "/os-hypervisors/detail")), 60)
    hypervisor = resp.json()["hypervisors"][0]
    assert hypervisor["hypervisor_type"] == "QEMU"
    flavors = {f["Name"]: f for f in cloud.openstack("flavor", "list")}
    assert {"m1.tiny", "m1.small", "m1.medium"} <= set(flavors)
    assert flavors["m1.tiny"]["RAM"] == 512 and flavors["m1.tiny"]["Disk"] == 1


# Ports of the servers test_deleting_the_servers_leaves_nothing deleted.
DELETED_PORTS: list[dict[str, Any]] = []

USERDATA = "#!/bin/sh\necho {name}-userdata > /root/userdata-ran\nexit 0\n"


def boot_tasks(cloud: Cloud, state: str = "present") -> list[dict[str, Any]]:
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    image = str(REPO / "tests" / "images" / "cache" / "tiny.qcow2")
    servers = [{"stratus.cloud.cloud_server": {
        **auth, "name": name, "state": state, "image": "sdep-tiny", "flavor": "m1.tiny",
        "networks": ["sdep-net"], "key_name": "sdep-key", "config_drive": config_drive,
        "userdata": USERDATA.format(name=name), "security_groups": ["default", "sdep-ssh"],
        "floating_ip": "auto", "timeout": 300,
    }} for name, config_drive in (("sdep-a", True), ("sdep-b", False))]
    if state == "absent":
        for task in servers:
            params = task["stratus.cloud.cloud_server"]
            task["stratus.cloud.cloud_server"] = {
                **auth, "name": params["name"], "state": "absent", "timeout": 300}
        return servers
    return [
        {"stratus.cloud.cloud_image": {**auth, "name": "sdep-tiny", "filename": image,
                                       "disk_format": "qcow2", "container_format": "bare"}},
        {"stratus.cloud.cloud_network": {
            **auth, "name": "public", "external": True, "provider_network_type": "flat",
            "provider_physical_network": "public",
            "subnets": [{"name": "public-subnet", "cidr": EXT_CIDR, "gateway_ip": EXT_GATEWAY,
                         "enable_dhcp": False,
                         "allocation_pools": [{"start": f"{EXT_NET}.100",
                                               "end": f"{EXT_NET}.200"}]}]}},
        {"stratus.cloud.cloud_network": {
            **auth, "name": "sdep-net",
            "subnets": [{"name": "sdep-subnet", "cidr": TENANT_CIDR}]}},
        {"stratus.cloud.cloud_router": {**auth, "name": "sdep-router", "network": "public",
                                        "interfaces": ["sdep-subnet"]}},
        {"stratus.cloud.cloud_security_group": {
            **auth, "name": "sdep-ssh", "description": "SSH and ping (e2e)",
            "rules": [{"direction": "egress", "ethertype": "IPv4"},
                      {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                       "remote_ip_prefix": "0.0.0.0/0"},
                      {"protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}]}},
        {"stratus.cloud.cloud_keypair": {**auth, "name": "sdep-key",
                                         "public_key_file": f"{cloud.key}.pub"}},
        *servers,
    ]


@pytest.fixture(scope="module")
def booted(cloud: Cloud) -> dict[str, dict[str, Any]]:
    """The two guests of the boot playbook, by name: the module's server result."""
    results, _ = cloud.play(boot_tasks(cloud), "boot-1")
    servers = {}
    for value in results.values():
        server = value.get("server")
        if isinstance(server, dict) and server.get("name", "").startswith("sdep-"):
            servers[server["name"]] = server
    assert set(servers) == {"sdep-a", "sdep-b"}, results
    return servers


def test_guests_boot_with_dhcp_metadata_ssh_and_userdata(
    cloud: Cloud, booted: dict[str, dict[str, Any]]
) -> None:
    for name, server in booted.items():
        assert server["status"] == "ACTIVE", server
        assert server["floating_ip"], server
        console = cloud.wait_console(server["id"], READY)
        ports = cloud.server_ports(server["id"])
        assert len(ports) == 1
        port_ip = ports[0]["fixed_ips"][0]["ip_address"]
        assert fixed_ip(server) == port_ip
        assert f"STRATUS-GUEST: network up {port_ip}" in console, console[-3000:]
        source = "config-drive" if name == "sdep-a" else "169.254.169.254"
        assert (f"STRATUS-GUEST: metadata fetched from {source} uuid={server['id']} "
                f"hostname={name}") in console, console[-3000:]
        assert "STRATUS-GUEST: userdata exit=0" in console, console[-3000:]

        address = server["floating_ip"]
        cloud.wait_ssh(address)
        assert cloud.ssh(address, "hostname").stdout.strip() == name
        assert cloud.ssh(address, "cat /root/userdata-ran").stdout.strip() == f"{name}-userdata"
        # Both read the metadata service (sdep-a booted from its config drive).
        meta = cloud.ssh(address, "timeout 15 wget -qO- "
                         "http://169.254.169.254/openstack/latest/meta_data.json").stdout
        assert json.loads(meta)["uuid"] == server["id"]


def test_guests_ping_each_other(cloud: Cloud, booted: dict[str, dict[str, Any]]) -> None:
    a, b = booted["sdep-a"], booted["sdep-b"]
    for this, other in ((a, b), (b, a)):
        cloud.wait_ssh(this["floating_ip"])
        done = cloud.ssh(this["floating_ip"], f"ping -c 3 -W 3 {fixed_ip(other)}", check=False)
        assert done.returncode == 0, f"{this['name']} cannot ping {other['name']}: {done.stdout}"


def test_second_boot_run_changes_nothing(cloud: Cloud, booted: dict[str, dict[str, Any]]) -> None:
    _, output = cloud.play(boot_tasks(cloud), "boot-2")
    assert recap(output)["changed"] == 0, f"second run changed: {changed_tasks(output)}"


def test_deleting_the_servers_leaves_nothing(
    cloud: Cloud, booted: dict[str, dict[str, Any]]
) -> None:
    ports = {name: cloud.server_ports(server["id"]) for name, server in booted.items()}
    cloud.play(boot_tasks(cloud, state="absent"), "delete")
    for name, server in booted.items():
        assert cloud.server(server["id"]) is None
        assert not (cloud.instances / server["id"]).exists()
        for port in ports[name]:
            cloud.wait_device_gone(cloud.tap(port["id"]))
            for needle in (port["mac_address"], port["fixed_ips"][0]["ip_address"]):
                cloud.wait_dhcp_gone(needle)
            DELETED_PORTS.append(port)
    assert cloud.domains() == [], "deleted servers left libvirt domains"
    assert cloud.instance_leftovers() == [], "deleted servers left files in instances_path"


def test_deleted_servers_leave_no_dhcp_lease(cloud: Cloud) -> None:
    assert DELETED_PORTS, "test_deleting_the_servers_leaves_nothing did not run"
    for port in DELETED_PORTS:
        for needle in (port["mac_address"], port["fixed_ips"][0]["ip_address"]):
            found = cloud.agent_files_mention(needle, leases=True)
            assert found == [], f"lease of {needle} still in {found}"


def test_openstackclient_boot_stop_start_reboot_delete(cloud: Cloud) -> None:
    server = cloud.openstack(
        "server", "create", "--image", "sdep-tiny", "--flavor", "m1.tiny", "--network",
        "sdep-net", "--key-name", "sdep-key", "--wait", "sdep-osc", timeout=400)
    assert server["status"] == "ACTIVE"
    wait_for("the console log to show the ready line", lambda: READY in cloud.openstack(
        "console", "log", "show", server["id"], fmt=False).stdout, 240, 3)

    def status(wanted: str) -> Callable[[], bool]:
        return lambda: cloud.openstack("server", "show", server["id"])["status"] == wanted

    cloud.openstack("server", "stop", server["id"], fmt=False)
    wait_for("SHUTOFF", status("SHUTOFF"), 180, 3)
    shown = cloud.openstack("server", "show", server["id"])
    power = shown.get("OS-EXT-STS:power_state", shown.get("power_state"))
    assert power in ("Shutdown", 4), shown
    cloud.openstack("server", "start", server["id"], fmt=False)
    wait_for("ACTIVE after start", status("ACTIVE"), 180, 3)
    cloud.openstack("server", "reboot", "--wait", server["id"], fmt=False, timeout=400)
    assert cloud.openstack("server", "show", server["id"])["status"] == "ACTIVE"
    ports = cloud.server_ports(server["id"])
    cloud.openstack("server", "delete", "--wait", server["id"], fmt=False, timeout=400)
    assert cloud.server(server["id"]) is None
    assert not (cloud.instances / server["id"]).exists()
    for port in ports:
        cloud.wait_device_gone(cloud.tap(port["id"]))
    assert cloud.domains() == []


def test_agent_killed_during_build_heals(cloud: Cloud) -> None:
    server = cloud.openstack("server", "create", "--image", "sdep-tiny", "--flavor", "m1.tiny",
                             "--network", "sdep-net", "sdep-crash")
    assert cloud.server(server["id"])["status"] == "BUILD"  # type: ignore[index]
    pid = int(cloud.supervisorctl("pid", "stratus-compute-agent").stdout.strip())
    os.kill(pid, signal.SIGKILL)
    wait_for("the agent to die", lambda: not pid_alive(pid), 10, 0.2)
    started = cloud.supervisorctl("start", "stratus-compute-agent")
    assert started.returncode == 0 or "already started" in started.stdout, started.stdout
    wait_for("a new agent process", lambda: cloud.supervisorctl(
        "pid", "stratus-compute-agent").stdout.strip() not in ("", "0", str(pid)), 30, 0.5)
    final = wait_for("ACTIVE or ERROR after the agent restart", lambda: (
        lambda s: s if s and s["status"] in ("ACTIVE", "ERROR") else None)(
            cloud.server(server["id"])), 240, 3)
    print(f"server after the agent crash: {final['status']}")
    ports = cloud.server_ports(server["id"])
    cloud.openstack("server", "delete", "--wait", server["id"], fmt=False, timeout=400)
    assert cloud.server(server["id"]) is None
    for port in ports:
        cloud.wait_device_gone(cloud.tap(port["id"]))
    assert cloud.domains() == []
    assert cloud.instance_leftovers() == []


@pytest.mark.slow
def test_debian_guest_runs_cloud_init_through_the_metadata_service(cloud: Cloud) -> None:
    image = run("bash", str(REPO / "tests" / "images" / "build-debian.sh"), timeout=900)
    path = image.stdout.strip().splitlines()[-1]
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    # The tenant network, router, security group and key (idempotent: also when run alone).
    setup = boot_tasks(cloud)[:6]
    results, _ = cloud.play([
        *setup,
        {"stratus.cloud.cloud_image": {**auth, "name": "sdep-debian", "filename": path,
                                       "disk_format": "qcow2", "container_format": "bare",
                                       "timeout": 600}},
        {"stratus.cloud.cloud_server": {**auth, "name": "sdep-debian", "image": "sdep-debian",
                                        "flavor": "m1.tiny", "networks": ["sdep-net"],
                                        "key_name": "sdep-key", "config_drive": False,
                                        "security_groups": ["default", "sdep-ssh"],
                                        "floating_ip": "auto", "timeout": 600}},
    ], "debian")
    server = results[f"r{len(setup) + 1}"]["server"]
    try:
        console = cloud.wait_console(server["id"], "Cloud-init v.", timeout=600)
        assert "finished at" in console or cloud.wait_console(server["id"], "finished at", 300)
        address = server["floating_ip"]
        cloud.wait_ssh(address, user="debian", timeout=180)
        result = cloud.ssh(address, "sudo cat /var/lib/cloud/data/result.json", user="debian")
        data = json.loads(result.stdout)["v1"]
        assert data["errors"] == [], data
        assert "OpenStack" in data["datasource"], data
        assert cloud.ssh(address, "hostname", user="debian").stdout.strip() == "sdep-debian"
    finally:
        cloud.play([{"stratus.cloud.cloud_server": {**auth, "name": "sdep-debian",
                                                    "state": "absent", "timeout": 300}}],
                   "debian-delete")
    assert cloud.domains() == []


# ---- the bystander (issue 16): this cloud stays up while the other e2e deploys run ----------
KEEP = "sdep-keep"


def agent_log(cloud: Cloud, name: str) -> Path:
    return cloud.prefix / "var" / "log" / "stratus" / f"{name}.log"


def domain_id(cloud: Cloud, name: str) -> str:
    """The running domain's id (a new one after any restart) and its state."""
    domid = run("virsh", "-c", "qemu:///system", "domid", name, check=False).stdout.strip()
    state = run("virsh", "-c", "qemu:///system", "domstate", name, check=False).stdout.strip()
    return f"{domid} {state}"


def test_bystander_guest_answers_on_its_floating_ip(cloud: Cloud) -> None:
    """A guest that stays up while the other e2e modules deploy, boot fake VMs, churn and
    tear down their clouds (other deploy prefixes) beside this one; what this cloud holds on
    the host is recorded for test_bystander_is_unchanged_by_the_other_deploys."""
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    setup = boot_tasks(cloud)[:6]
    results, _ = cloud.play([*setup, {"stratus.cloud.cloud_server": {
        **auth, "name": KEEP, "image": "sdep-tiny", "flavor": "m1.tiny",
        "networks": ["sdep-net"], "key_name": "sdep-key", "config_drive": True,
        "security_groups": ["default", "sdep-ssh"], "floating_ip": "auto", "timeout": 300,
    }}], "bystander")
    server = results[f"r{len(setup)}"]["server"]
    assert server["status"] == "ACTIVE" and server["floating_ip"], server
    address = server["floating_ip"]
    cloud.wait_ssh(address)
    assert cloud.ssh(address, "hostname").stdout.strip() == KEEP
    [domain] = cloud.domains()
    ports = cloud.server_ports(server["id"])
    objects = HostObjects.of(cloud.deploy_prefix, cloud.agent_state, (EXT_BRIDGE,))
    print(f"bystander {cloud.deploy_prefix}: {objects.summary()}")
    # What the issue names must be there to be compared: its namespaces, bridges, the
    # guest's tap, dnsmasq.
    assert any("-qdhcp-" in ns for ns in objects.namespaces), objects
    assert any("-qrouter-" in ns for ns in objects.namespaces), objects
    assert cloud.tap(ports[0]["id"]) in objects.interfaces, objects
    assert EXT_BRIDGE in objects.interfaces and objects.dnsmasq, objects
    cloud.bystander = {
        "server": server, "address": address, "domain": domain,
        "domain_id": domain_id(cloud, domain), "objects": objects,
        "logs": {name: log_size(agent_log(cloud, name))
                 for name in ("stratus-network-agent", "stratus-compute-agent")},
    }


@pytest.mark.e2e_last
def test_bystander_is_unchanged_by_the_other_deploys(cloud: Cloud) -> None:
    """Runs after every other e2e module (tests/e2e/conftest.py): their deploys, boots and
    teardowns left this cloud exactly as it was; then this cloud is torn down."""
    try:
        keep = cloud.bystander
        if not keep:
            pytest.skip("test_bystander_guest_answers_on_its_floating_ip did not run")
        cloud.wait_ssh(keep["address"], timeout=60)
        assert cloud.ssh(keep["address"], "hostname").stdout.strip() == KEEP
        assert domain_id(cloud, keep["domain"]) == keep["domain_id"], "the guest was restarted"
        after = HostObjects.of(cloud.deploy_prefix, cloud.agent_state, (EXT_BRIDGE,))
        print(f"bystander {cloud.deploy_prefix} after: {after.summary()}")
        assert keep["objects"].differences(after) == []
        for name, offset in keep["logs"].items():
            lines = new_log_lines(agent_log(cloud, name), offset)
            assert removals(lines) == [], f"{name} removed things while the others ran"
        server = cloud.server(keep["server"]["id"])
        assert server is not None and server["status"] == "ACTIVE", server
    finally:
        cloud.close()
