"""stratus-compute as a real process next to real identity, image and network servers.

The test plays the compute agent through the agent endpoints (heartbeat, assignments,
reports) in a thread, and python-openstackclient drives flavors, key pairs, server
groups and a server's whole life: create --wait, list, show, console log, stop, start,
reboot, delete.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import BIN, ComputeServer, IdentityServer
from stack import compute_stack

pytestmark = [pytest.mark.integration]
HOST = "scapi-cmp1"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("scapi")
    with compute_stack(root) as st:
        yield {"identity": st.identity, "image": st.image, "network": st.network,
               "compute": st.compute, "root": root}


def osc(identity: IdentityServer, *args: str, json_out: bool = True) -> Any:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(identity.clouds_yaml()),
           "OS_CLOUD": "stratus"}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        env.pop(key, None)
    cmd = [str(BIN / "openstack"), *args, *(["-f", "json"] if json_out else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if json_out and proc.stdout.strip() else proc.stdout


class FakeAgent(threading.Thread):
    """Plays stratus-compute-agent for one host over the agent endpoints."""

    def __init__(self, compute_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=f"{compute_url}/v2.1/stratus",
                                 headers={"X-Auth-Token": token}, timeout=40)
        self.halt = threading.Event()
        self.reports: list[dict[str, Any]] = []

    def heartbeat(self) -> None:
        resp = self.http.put(f"/compute-hosts/{HOST}", json={"host": {
            "vcpus": 4, "memory_mb": 8192, "local_gb": 50, "virt_type": "qemu",
            "hypervisor_type": "QEMU", "hypervisor_hostname": HOST, "host_ip": "127.0.0.1"}})
        assert resp.status_code == 200, resp.text

    def report(self, sid: str, **body: Any) -> None:
        resp = self.http.post(f"/compute-hosts/{HOST}/servers/{sid}/report", json=body)
        assert resp.status_code == 200, resp.text
        self.reports.append({"id": sid, **body})

    def converge(self, a: dict[str, Any]) -> None:
        sid, task = a["id"], a["task_state"]
        tail = f"STRATUS-GUEST: ready {a['name']}\n"
        if a["delete"]:
            self.report(sid, deleted=True)
        elif task == "spawning":
            assert a["ports"] and a["image"]["checksum"]
            self.report(sid, vm_state="active", power_state=1, console_tail=tail)
        elif task == "powering-off":
            self.report(sid, vm_state="stopped", power_state=4)
        elif task == "powering-on":
            self.report(sid, vm_state="active", power_state=1, console_tail=tail)
        elif task in ("rebooting", "rebooting_hard"):
            self.report(sid, vm_state="active", power_state=1,
                        reboot_generation=a["reboot"]["generation"], console_tail=tail + tail)

    def run(self) -> None:
        params: dict[str, Any] = {}
        while not self.halt.is_set():
            self.heartbeat()
            resp = self.http.get(f"/compute-hosts/{HOST}/servers", params=params)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            params = {"wait": 2, "since": body["generation"]}
            for a in body["servers"]:
                self.converge(a)


def wait_status(identity: IdentityServer, name: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        srv = osc(identity, "server", "show", name)
        if srv["status"] == status:
            return
        assert time.monotonic() < deadline, srv
        time.sleep(0.5)


def tiny_image(cloud: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    disk = Path(cloud["root"]) / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    img = httpx.post(f"{cloud['image'].url}/v2/images", headers=headers, json={
        "name": "tiny", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}).json()
    up = httpx.put(f"{cloud['image'].url}/v2/images/{img['id']}/file", content=disk.read_bytes(),
                   headers={**headers, "Content-Type": "application/octet-stream"})
    assert up.status_code == 204, up.text
    return dict(img)


def test_openstackclient_drives_a_server_life(cloud: dict[str, Any]) -> None:
    ident: IdentityServer = cloud["identity"]
    compute: ComputeServer = cloud["compute"]
    token = ident.token()
    headers = {"X-Auth-Token": token}
    # An image in the image API and a network in the network API.
    img = tiny_image(cloud, headers)
    net = osc(ident, "network", "create", "scapi-net")
    osc(ident, "subnet", "create", "--network", "scapi-net", "--subnet-range",
        "192.168.77.0/24", "scapi-sub")

    agent = FakeAgent(compute.url, token)
    agent.heartbeat()
    agent.start()
    try:
        flavor = osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1",
                     "--id", "1", "m1.tiny")
        assert flavor["name"] == "m1.tiny" and flavor["ram"] == 256
        assert "m1.tiny" in [f["Name"] for f in osc(ident, "flavor", "list")]
        assert osc(ident, "flavor", "show", "m1.tiny")["vcpus"] == 1
        osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "64", "--disk", "0", "gone")
        osc(ident, "flavor", "delete", "gone", json_out=False)
        assert "gone" not in [f["Name"] for f in osc(ident, "flavor", "list")]

        private = osc(ident, "keypair", "create", "gen", json_out=False)
        assert "PRIVATE KEY" in private
        pub = Path(cloud["root"]) / "k.pub"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(pub.with_suffix(""))], check=True)
        kp = osc(ident, "keypair", "create", "--public-key", str(pub), "ops")
        assert kp["name"] == "ops" and kp["fingerprint"]
        assert {k["Name"] for k in osc(ident, "keypair", "list")} == {"gen", "ops"}
        osc(ident, "keypair", "delete", "gen", json_out=False)

        group = osc(ident, "server", "group", "create", "--policy", "anti-affinity", "g1")
        assert group["name"] == "g1"

        srv = osc(ident, "server", "create", "--image", img["id"], "--flavor", "m1.tiny",
                  "--network", net["id"], "--key-name", "ops", "--hint",
                  f"group={group['id']}", "--wait", "vm1")
        assert srv["status"] == "ACTIVE" and srv["OS-EXT-SRV-ATTR:host"] == HOST
        listed = osc(ident, "server", "list")
        assert [s["Name"] for s in listed] == ["vm1"] and listed[0]["Status"] == "ACTIVE"
        assert "192.168.77." in json.dumps(listed[0]["Networks"])
        shown = osc(ident, "server", "show", "vm1")
        assert shown["key_name"] == "ops" and shown["flavor"]
        ports = httpx.get(f"{cloud['network'].url}/v2.0/ports", headers=headers,
                          params={"device_id": srv["id"]}).json()["ports"]
        assert len(ports) == 1 and ports[0]["binding:host_id"] == HOST
        log = osc(ident, "console", "log", "show", "vm1", json_out=False)
        assert "STRATUS-GUEST: ready vm1" in log

        osc(ident, "server", "stop", "vm1", json_out=False)
        wait_status(ident, "vm1", "SHUTOFF")
        osc(ident, "server", "start", "vm1", json_out=False)
        wait_status(ident, "vm1", "ACTIVE")
        osc(ident, "server", "reboot", "--hard", "--wait", "vm1", json_out=False)
        wait_status(ident, "vm1", "ACTIVE")
        osc(ident, "server", "delete", "--wait", "vm1", json_out=False)
        assert osc(ident, "server", "list") == []
        ports = httpx.get(f"{cloud['network'].url}/v2.0/ports", headers=headers,
                          params={"device_id": srv["id"]}).json()["ports"]
        assert ports == []
        assert any(r.get("deleted") for r in agent.reports)
    finally:
        agent.halt.set()
        agent.join(timeout=10)


def test_two_workers_on_postgresql_never_overcommit(cloud: dict[str, Any],
                                                   postgres: Any) -> None:
    """Concurrent creates spread over two API processes on one PostgreSQL database: a
    host with room for 3 gets exactly 3, the others go ERROR "No valid host"."""
    ident: IdentityServer = cloud["identity"]
    url = postgres.create_database(f"scapi_workers_{os.getpid()}")
    compute = ComputeServer(Path(cloud["root"]) / "compute-pg", ident, cloud["image"].url,
                            cloud["network"].url, database_url=url,
                            extra_env={"STRATUS_COMPUTE__WORKERS": "2"})
    compute.prepare()
    compute.start()
    try:
        token = ident.token()
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.47"}
        http = httpx.Client(base_url=f"{compute.url}/v2.1", headers=headers, timeout=60)
        resp = http.put("/stratus/compute-hosts/scapi-pg1", json={"host": {
            "vcpus": 64, "memory_mb": 512 + 3 * 256, "local_gb": 100, "virt_type": "qemu"}})
        assert resp.status_code == 200, resp.text
        resp = http.post("/flavors", json={"flavor": {"name": "t", "id": "t", "vcpus": 1,
                                                      "ram": 256, "disk": 1}})
        assert resp.status_code == 200, resp.text
        image_id = tiny_image(cloud, {"X-Auth-Token": token})["id"]

        def boot(i: int) -> int:
            with httpx.Client(base_url=f"{compute.url}/v2.1", headers=headers,
                              timeout=60) as c:
                return c.post("/servers", json={"server": {
                    "name": f"c{i}", "imageRef": image_id, "flavorRef": "t",
                    "networks": "none"}}).status_code

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(boot, range(8)))
        assert codes == [202] * 8
        servers = http.get("/servers/detail").json()["servers"]
        placed = [s for s in servers if s["OS-EXT-SRV-ATTR:host"] == "scapi-pg1"]
        failed = [s for s in servers if s["status"] == "ERROR"]
        assert len(placed) == 3 and len(failed) == 5
        assert all(s["fault"]["message"].startswith("No valid host was found.")
                   for s in failed)
        hyp = http.get("/os-hypervisors/detail").json()["hypervisors"][0]
        assert hyp["hypervisor_hostname"] == "scapi-pg1"
    finally:
        compute.stop()
    assert "Traceback" not in compute.log(), compute.log()[-3000:]
