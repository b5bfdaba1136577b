"""The compute modules in real ansible-playbook runs against real services.

stratus-identity, -image, -network and -compute run as processes; the test plays
the compute agent of one host through the compute API's agent endpoints in a
thread (heartbeat, assignments, reports), as docs/compute.md describes, so no
guest boots. Every converging step runs four times in one playbook: check mode
(predicts a change, makes none), for real (the same diff), again (changed=0)
and in check mode again (no change).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from helpers import ComputeServer, IdentityServer, ImageServer
from network_api import NetworkServer
from stack import compute_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSES = ("check", "real", "again", "check-again")
HOST = "smod-cmp1"


class FakeAgent(threading.Thread):
    """Plays stratus-compute-agent for one host: every assignment converges at once."""

    def __init__(self, compute_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=f"{compute_url}/v2.1/stratus",
                                 headers={"X-Auth-Token": token}, timeout=40)
        self.halt = threading.Event()
        self.reports: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def heartbeat(self) -> None:
        resp = self.http.put(f"/compute-hosts/{HOST}", json={"host": {
            "vcpus": 4, "memory_mb": 8192, "local_gb": 50, "virt_type": "qemu",
            "hypervisor_type": "QEMU", "hypervisor_hostname": HOST, "host_ip": "127.0.0.1"}})
        assert resp.status_code == 200, resp.text

    def report(self, sid: str, **body: Any) -> None:
        resp = self.http.post(f"/compute-hosts/{HOST}/servers/{sid}/report", json=body)
        if resp.status_code != 200:
            self.errors.append(resp.text)
        self.reports.append({"id": sid, **body})

    def converge(self, a: dict[str, Any]) -> None:
        sid, task = a["id"], a["task_state"]
        states = {"spawning": ("active", 1), "powering-on": ("active", 1),
                  "powering-off": ("stopped", 4), "pausing": ("paused", 3),
                  "unpausing": ("active", 1), "suspending": ("suspended", 7),
                  "resuming": ("active", 1)}
        if a["delete"]:
            self.report(sid, deleted=True)
        elif task == "spawning" and a["name"] == "smod-fail":
            self.report(sid, vm_state="error", power_state=0, task_state=None,
                        fault={"code": 500, "message": "smod: the spawn failed on purpose"})
        elif task in states:
            vm_state, power = states[task]
            self.report(sid, vm_state=vm_state, power_state=power, task_state=None)

    def run(self) -> None:
        generation: int | None = None
        while not self.halt.is_set():
            try:
                self.heartbeat()
                query = {"wait": 1} if generation is None else {"wait": 1, "since": generation}
                resp = self.http.get(f"/compute-hosts/{HOST}/servers", params=query)
                if resp.status_code != 200:
                    self.errors.append(f"{resp.status_code} {resp.text}")
                    self.halt.wait(1)
                    continue
                body = resp.json()
                generation = body["generation"]
                for assignment in body["servers"]:
                    self.converge(assignment)
            except (httpx.HTTPError, AssertionError, KeyError) as exc:
                self.errors.append(repr(exc))
                self.halt.wait(1)


class Stack:
    def __init__(self, root: Path, identity: IdentityServer, network: NetworkServer,
                 image: ImageServer, compute: ComputeServer) -> None:
        self.root = root
        self.identity = identity
        self.network = network
        self.image = image
        self.compute = compute
        self.collections = root / "collections"
        (self.collections / "ansible_collections" / "stratus").mkdir(parents=True)
        (self.collections / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
        self.clouds_yaml = identity.clouds_yaml()
        self.runs = 0

    def api(self, method: str, url: str, **kw: Any) -> Any:
        resp = httpx.request(method, url, headers={"X-Auth-Token": self.identity.token()},
                             timeout=30, **kw)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    def play(self, steps: list[dict[str, Any]], repeat: bool = True) -> list[dict[str, Any]]:
        """Run each step 4 times (see the module docstring); the results, per step and pass."""
        self.runs += 1
        out = self.root / f"results-{self.runs}.json"
        body, names = [], []
        passes = PASSES if repeat else ("real",)
        for i, step in enumerate(steps):
            step = {module: {**args, "clouds_yaml": str(self.clouds_yaml)}
                    for module, args in step.items()}
            for n, label in enumerate(passes):
                reg = f"r{i}_{n}"
                names.append(reg)
                body.append({**step, "name": f"step {i} {label}", "register": reg,
                             "check_mode": label.startswith("check"), "ignore_errors": True})
        body.append({
            "name": "Save the results",
            "ansible.builtin.copy": {
                "content": "{{ {" + ", ".join(f"'{r}': {r}" for r in names) + "} | to_json }}",
                "dest": str(out), "mode": "0600"},
            "check_mode": False, "diff": False,
        })
        playbook = self.root / f"play-{self.runs}.yml"
        playbook.write_text(yaml.safe_dump([{
            "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": body,
        }], sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
        })
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,",
                               str(playbook), "--diff"], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        results = json.loads(out.read_text())
        return [{label: results[f"r{i}_{n}"] for n, label in enumerate(passes)}
                for i in range(len(steps))]


def converged(step: dict[str, Any], what: str) -> dict[str, Any]:
    """The four passes behaved: check predicted the real change, the second run was a no-op."""
    for label, result in step.items():
        assert not result.get("failed"), (what, label, result.get("msg"))
    assert step["check"]["changed"] is True, (what, step["check"])
    assert step["real"]["changed"] is True, (what, step["real"])
    assert step["check"]["diff"] == step["real"]["diff"], what
    assert step["again"]["changed"] is False, (what, step["again"].get("diff"))
    assert step["check-again"]["changed"] is False, (what, step["check-again"].get("diff"))
    return dict(step["real"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("smod")
    with compute_stack(root) as st:
        yield Stack(root, st.identity, st.network, st.image, st.compute)


@pytest.fixture(scope="module")
def agent(stack: Stack) -> Iterator[FakeAgent]:
    fake = FakeAgent(stack.compute.url, stack.identity.token())
    fake.heartbeat()
    fake.start()
    yield fake
    fake.halt.set()
    fake.join(timeout=10)
    assert fake.errors == [], fake.errors[:3]


def prepare_world(stack: Stack) -> dict[str, Any]:
    """An image, a tenant network behind a router on the external network (via the APIs)."""
    disk = stack.root / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    img = stack.api("POST", f"{stack.image.url}/v2/images", json={
        "name": "smod-tiny", "disk_format": "qcow2", "container_format": "bare"})
    resp = httpx.put(f"{stack.image.url}/v2/images/{img['id']}/file", content=disk.read_bytes(),
                     headers={"X-Auth-Token": stack.identity.token(),
                              "Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    url = stack.network.url
    net = stack.api("POST", f"{url}/v2.0/networks", json={"network": {"name": "smod-net"}})
    sub = stack.api("POST", f"{url}/v2.0/subnets", json={"subnet": {
        "network_id": net["network"]["id"], "cidr": "192.168.66.0/24", "ip_version": 4,
        "name": "smod-sub"}})["subnet"]
    pub = stack.api("POST", f"{url}/v2.0/networks", json={"network": {
        "name": "smod-public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"}})["network"]
    stack.api("POST", f"{url}/v2.0/subnets", json={"subnet": {
        "network_id": pub["id"], "cidr": "172.24.66.0/24", "ip_version": 4,
        "enable_dhcp": False, "name": "smod-public-sub"}})
    router = stack.api("POST", f"{url}/v2.0/routers", json={"router": {
        "name": "smod-router", "external_gateway_info": {"network_id": pub["id"]}}})["router"]
    stack.api("PUT", f"{url}/v2.0/routers/{router['id']}/add_router_interface",
              json={"subnet_id": sub["id"]})
    web = stack.api("POST", f"{url}/v2.0/security-groups", json={"security_group": {
        "name": "smod-web"}})["security_group"]
    return {"image": img, "network": net["network"], "public": pub, "web": web}


def test_compute_modules_converge_and_are_idempotent(stack: Stack, agent: FakeAgent) -> None:
    world = prepare_world(stack)
    keyfile = stack.root / "smod_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "smod", "-f",
                    str(keyfile)], check=True)
    server = "stratus.cloud.cloud_server"

    # 1. A flavor, a key pair, a server with a floating IP.
    results = stack.play([
        {"stratus.cloud.cloud_flavor": {"name": "smod.tiny", "ram": 256, "vcpus": 1, "disk": 1,
                                        "extra_specs": {"hw:cpu_policy": "shared"}}},
        {"stratus.cloud.cloud_keypair": {"name": "smod-key",
                                         "public_key_file": f"{keyfile}.pub"}},
        {server: {"name": "smod-web1", "image": "smod-tiny", "flavor": "smod.tiny",
                  "networks": ["smod-net"], "key_name": "smod-key", "floating_ip": "auto",
                  "metadata": {"role": "web"}, "userdata": "#!/bin/sh\necho smod\n",
                  "timeout": 30}},
    ])
    flavor = converged(results[0], "flavor")["flavor"]
    assert flavor["ram"] == 256 and flavor["extra_specs"] == {"hw:cpu_policy": "shared"}
    keypair = converged(results[1], "keypair")["keypair"]
    assert keypair["public_key"].split()[:2] == (keyfile.with_suffix(".pub").read_text()
                                                 .split()[:2])
    created = converged(results[2], "server")
    srv = created["server"]
    assert srv["status"] == "ACTIVE" and srv["OS-EXT-SRV-ATTR:host"] == HOST
    assert srv["key_name"] == "smod-key" and srv["metadata"] == {"role": "web"}
    assert srv["floating_ip"] and srv["floating_ip"].startswith("172.24.66.")
    assert srv["access_ipv4"] == srv["floating_ip"]
    assert results[2]["again"]["server"]["floating_ip"] == srv["floating_ip"]
    ports = stack.api("GET", f"{stack.network.url}/v2.0/ports",
                      params={"device_id": srv["id"]})["ports"]
    assert [p["network_id"] for p in ports] == [world["network"]["id"]]
    fips = stack.api("GET", f"{stack.network.url}/v2.0/floatingips",
                     params={"port_id": ports[0]["id"]})["floatingips"]
    assert [f["floating_ip_address"] for f in fips] == [srv["floating_ip"]]
    doc = stack.api("GET", f"{stack.compute.url}/v2.1/stratus/metadata", params={
        "network_id": ports[0]["network_id"],
        "fixed_ip": ports[0]["fixed_ips"][0]["ip_address"]})["instance"]
    assert base64.b64decode(doc["user_data"]) == b"#!/bin/sh\necho smod\n"
    assert [k["name"] for k in doc["keys"]] == ["smod-key"]

    # Pause and resume through the power states.
    results = stack.play([{server: {"name": "smod-web1", "power_state": "paused"}},
                          {server: {"name": "smod-web1", "power_state": "started"}}])
    assert converged(results[0], "pause")["server"]["status"] == "PAUSED"
    assert converged(results[1], "unpause")["server"]["status"] == "ACTIVE"

    # A private flavor for a project by name, and a generated key pair.
    admin_project = stack.api("GET", f"{stack.identity.url}/v3/projects",
                              params={"name": "admin"})["projects"][0]["id"]
    results = stack.play([
        {"stratus.cloud.cloud_flavor": {"name": "smod.private", "ram": 128, "vcpus": 1,
                                        "is_public": False, "projects": ["admin"]}},
        {"stratus.cloud.cloud_keypair": {"name": "smod-gen"}},
    ])
    private = converged(results[0], "private flavor")
    assert private["diff"]["after"]["projects"] == [admin_project]
    access = stack.api("GET", f"{stack.compute.url}/v2.1/flavors/{private['id']}/"
                       "os-flavor-access")["flavor_access"]
    assert [a["tenant_id"] for a in access] == [admin_project]
    generated = converged(results[1], "generated key pair")
    assert "PRIVATE KEY" in generated["private_key"]
    assert "private_key" not in results[1]["again"]

    # 2. Stop it and change its metadata; then the info module; then clear failures.
    results = stack.play([
        {server: {"name": "smod-web1", "power_state": "stopped",
                  "metadata": {"role": "db"}, "security_groups": ["default", "smod-web"]}},
    ])
    stopped = converged(results[0], "stop")
    assert stopped["diff"] == {
        "before": {"metadata": {"role": "web"}, "power_state": "started",
                   "security_groups": ["default"]},
        "after": {"metadata": {"role": "db"}, "power_state": "stopped",
                  "security_groups": ["default", "smod-web"]}}
    assert stopped["server"]["status"] == "SHUTOFF"
    (port,) = stack.api("GET", f"{stack.network.url}/v2.0/ports",
                        params={"device_id": srv["id"]})["ports"]
    assert world["web"]["id"] in port["security_groups"] and len(port["security_groups"]) == 2
    results = stack.play([
        {"stratus.cloud.cloud_server_info": {"server": "smod-web1"}},
        {"stratus.cloud.cloud_server_info": {"filters": {"status": "ACTIVE"}}},
        {server: {"name": "smod-bad", "image": "smod-no-such-image", "flavor": "smod.tiny"}},
        {server: {"name": "smod-bad", "image": "smod-tiny", "flavor": "smod.none"}},
        {server: {"name": "smod-bad", "image": "smod-tiny", "flavor": "smod.tiny",
                  "networks": ["smod-no-net"]}},
        {server: {"name": "smod-web1", "image": "smod-tiny", "flavor": "1"}},
        {"stratus.cloud.cloud_flavor": {"name": "smod.tiny", "ram": 512, "vcpus": 1}},
        {server: {"name": "smod-fail", "image": "smod-tiny", "flavor": "smod.tiny",
                  "networks": ["smod-net"], "timeout": 60}},
    ], repeat=False)
    (info,) = results[0]["real"]["servers"]
    assert info["id"] == srv["id"] and info["status"] == "SHUTOFF"
    assert info["floating_ip"] == srv["floating_ip"]
    assert results[1]["real"]["servers"] == []
    assert "Image 'smod-no-such-image' was not found" in results[2]["real"]["msg"]
    assert ("Flavor 'smod.none' was not found (there are: smod.private, smod.tiny)"
            in results[3]["real"]["msg"])
    assert "Network 'smod-no-net' was not found" in results[4]["real"]["msg"]
    warned = results[5]["real"]
    assert not warned.get("failed") and warned["changed"] is False
    assert any("flavor (it has smod.tiny, wanted 1)" in w for w in warned["warnings"])
    assert "flavors cannot change. Set recreate: true" in results[6]["real"]["msg"]
    assert results[7]["real"]["msg"].endswith(
        "went to ERROR: smod: the spawn failed on purpose. The server was deleted again.")
    listed = stack.api("GET", f"{stack.compute.url}/v2.1/servers")["servers"]
    assert [s["name"] for s in listed] == ["smod-web1"], "nothing half-made by the failures"

    # 3. Everything goes; the automatic floating IP is released.
    results = stack.play([
        {server: {"name": "smod-web1", "state": "absent", "timeout": 120}},
        {"stratus.cloud.cloud_keypair": {"name": "smod-key", "state": "absent"}},
        {"stratus.cloud.cloud_flavor": {"name": "smod.tiny", "state": "absent"}},
        {"stratus.cloud.cloud_keypair": {"name": "smod-gen", "state": "absent"}},
        {"stratus.cloud.cloud_flavor": {"name": "smod.private", "state": "absent"}},
    ])
    for step, what in zip(results, ["server", "keypair", "flavor", "gen", "private"],
                          strict=True):
        converged(step, what)
    assert stack.api("GET", f"{stack.compute.url}/v2.1/servers")["servers"] == []
    assert stack.api("GET", f"{stack.network.url}/v2.0/floatingips")["floatingips"] == []
    assert stack.api("GET", f"{stack.network.url}/v2.0/ports",
                     params={"device_id": srv["id"]})["ports"] == []
    assert any(r.get("deleted") for r in agent.reports)
