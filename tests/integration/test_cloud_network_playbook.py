"""The network modules in real ansible-playbook runs against real services.

stratus-identity and stratus-network run as processes; the collection is
found through ANSIBLE_COLLECTIONS_PATH (a temporary ansible_collections/
stratus/cloud symlink to this repository). Every step runs four times in a
row, inside one playbook: check mode (predicts a change, makes none), for
real (changed, with the same diff check mode predicted), for real again (not
changed) and in check mode again (not changed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from helpers import IdentityServer
from network_api import NetworkServer

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSES = ("check", "real", "again", "check-again")


class Stack:
    def __init__(self, root: Path, identity: IdentityServer, network: NetworkServer) -> None:
        self.root = root
        self.identity = identity
        self.network = network
        self.collections = root / "collections"
        (self.collections / "ansible_collections" / "stratus").mkdir(parents=True)
        (self.collections / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
        self.clouds_yaml = identity.clouds_yaml()
        self.runs = 0

    def api(self, method: str, path: str, **kw: Any) -> Any:
        resp = httpx.request(method, f"{self.network.url}{path}",
                             headers={"X-Auth-Token": self.identity.token()}, **kw)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    def play(self, steps: list[dict[str, Any]], repeat: bool = True) -> list[dict[str, Any]]:
        """Run each step 4 times (see the module docstring); the results, per step and pass."""
        self.runs += 1
        out = self.root / f"results-{self.runs}.json"
        body, names = [], []
        for i, step in enumerate(steps):
            # The clouds.yaml of the test's identity, explicitly: /etc/stratus/clouds.yaml
            # (a deployed cloud on this machine) comes before OS_CLIENT_CONFIG_FILE.
            step = {module: {**args, "clouds_yaml": str(self.clouds_yaml)}
                    for module, args in step.items()}
            for n, label in enumerate(PASSES if repeat else ("real",)):
                reg = f"r{i}_{n}"
                names.append(reg)
                body.append({**step, "name": f"step {i} {label}", "register": reg,
                             "check_mode": label.startswith("check"),
                             "ignore_errors": True})
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
        per_step = []
        for i in range(len(steps)):
            passes = PASSES if repeat else ("real",)
            per_step.append({label: results[f"r{i}_{n}"] for n, label in enumerate(passes)})
        return per_step


def converged(step: dict[str, Any], what: str) -> dict[str, Any]:
    """The four passes behaved: check predicted the real change, the second run was a no-op."""
    for label, result in step.items():
        assert not result.get("failed"), (what, label, result.get("msg"))
    assert step["check"]["changed"] is True, (what, step["check"])
    assert step["real"]["changed"] is True, (what, step["real"])
    assert step["check"]["diff"] == step["real"]["diff"], what
    assert step["again"]["changed"] is False, (what, step["again"].get("diff"))
    assert step["check-again"]["changed"] is False, (what, step["check-again"].get("diff"))
    return step["real"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("net-modules")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    network = NetworkServer(root / "network", f"sqlite:///{root}/network.sqlite", identity)
    try:
        network.prepare()
        network.start()
        yield Stack(root, identity, network)
    finally:
        network.stop()
        identity.stop()


def test_network_modules_converge_and_are_idempotent(stack: Stack) -> None:
    net = "stratus.cloud.cloud_network"
    # 1. Networks (tenant and external) and a security group.
    results = stack.play([
        {net: {"name": "app-net", "subnets": [{
            "name": "app-subnet", "cidr": "192.168.10.0/24",
            "dns_nameservers": ["192.168.10.1"]}]}},
        {net: {"name": "public", "external": True, "provider_network_type": "flat",
               "provider_physical_network": "public", "subnets": [{
                   "name": "public-subnet", "cidr": "172.24.4.0/24", "enable_dhcp": False,
                   "allocation_pools": [{"start": "172.24.4.10", "end": "172.24.4.250"}]}]}},
        {"stratus.cloud.cloud_security_group": {"name": "web", "description": "web", "rules": [
            {"direction": "egress"}, {"direction": "egress", "ethertype": "IPv6"},
            {"protocol": "tcp", "port_range_min": 80, "remote_ip_prefix": "0.0.0.0/0"},
            {"protocol": "icmp", "remote_ip_prefix": "10.0.0.1/8"},
            {"protocol": "tcp", "port_range_min": 22, "remote_group": "web"}]}},
        {"stratus.cloud.cloud_router": {"name": "app-router", "network": "public",
                                        "interfaces": ["app-subnet"]}},
    ])
    app = converged(results[0], "app-net")
    assert app["network"]["mtu"] == 1450 and app["subnets"][0]["gateway_ip"] == "192.168.10.1"
    pub = converged(results[1], "public")
    assert pub["network"]["router:external"] is True
    assert pub["subnets"][0]["allocation_pools"] == [
        {"start": "172.24.4.10", "end": "172.24.4.250"}]
    sg = converged(results[2], "web")["security_group"]
    assert len(sg["security_group_rules"]) == 5
    router = converged(results[3], "app-router")
    assert router["router"]["external_gateway_info"]["network_id"] == pub["network"]["id"]
    assert [i["ip_address"] for i in router["interfaces"]] == ["192.168.10.1"]

    # 2. A port (as compute would make it), its floating IP, and changes to everything.
    port = stack.api("POST", "/v2.0/ports", json={"port": {
        "network_id": app["network"]["id"], "name": "web1-port"}})["port"]
    results = stack.play([
        {"stratus.cloud.cloud_floating_ip": {"network": "public", "port": "web1-port"}},
        {net: {"name": "app-net", "subnets": [
            {"name": "app-subnet", "cidr": "192.168.10.0/24", "dns_nameservers": ["9.9.9.9"]},
            {"name": "app-subnet2", "cidr": "192.168.11.0/24", "gateway_ip": "192.168.11.254"}]}},
        {"stratus.cloud.cloud_router": {"name": "app-router", "network": "public",
                                        "enable_snat": False,
                                        "interfaces": ["app-subnet", "app-subnet2"]}},
        {"stratus.cloud.cloud_security_group": {"name": "web", "rules": [
            {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
             "remote_ip_prefix": "0.0.0.0/0"}]}},
    ])
    fip = converged(results[0], "floating ip")["floating_ip"]
    assert fip["port_id"] == port["id"] and fip["status"] == "ACTIVE"
    assert fip["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    app2 = converged(results[1], "app-net update")
    assert {s["name"]: s["dns_nameservers"] for s in app2["subnets"]}["app-subnet"] == [
        "9.9.9.9"]
    r2 = converged(results[2], "router update")
    assert r2["router"]["external_gateway_info"]["enable_snat"] is False
    assert len(r2["interfaces"]) == 2
    sg2 = converged(results[3], "sg rules")["security_group"]
    assert [r["port_range_min"] for r in sg2["security_group_rules"]] == [443]

    # 3. The info modules, and a clear failure.
    results = stack.play([
        {"stratus.cloud.cloud_network_info": {"name": "app-net"}},
        {"stratus.cloud.cloud_router_info": {"name": "app-router"}},
        {"stratus.cloud.cloud_network_info": {"filters": {"router:external": True}}},
        {"stratus.cloud.cloud_network_info": {"name": "nothing-like-this"}},
        {net: {"name": "bad", "subnets": [{"name": "b", "cidr": "10.0.0.0/33"}]}},
    ], repeat=False)
    info = results[0]["real"]["networks"]
    assert [n["name"] for n in info] == ["app-net"] and len(info[0]["subnet_details"]) == 2
    assert len(results[1]["real"]["routers"][0]["interfaces_info"]) == 2
    assert [n["name"] for n in results[2]["real"]["networks"]] == ["public"]
    assert results[3]["real"]["networks"] == []
    bad = results[4]["real"]
    assert bad["failed"] and "cidr 10.0.0.0/33 is not a valid IPv4 network" in bad["msg"]

    # 4. Everything goes away again.
    stack.api("DELETE", f"/v2.0/ports/{port['id']}")
    results = stack.play([
        {"stratus.cloud.cloud_floating_ip": {"floating_ip_address": fip["floating_ip_address"],
                                             "state": "absent"}},
        {"stratus.cloud.cloud_router": {"name": "app-router", "state": "absent"}},
        {"stratus.cloud.cloud_security_group": {"name": "web", "state": "absent"}},
        {net: {"name": "bad", "state": "absent"}},
        {net: {"name": "app-net", "state": "absent"}},
        {net: {"name": "public", "state": "absent"}},
    ])
    for step, what in zip(results, ["fip", "router", "sg", "bad", "app", "public"], strict=True):
        if what == "bad":
            assert not any(r["changed"] for r in step.values())
            continue
        converged(step, what)
    assert stack.api("GET", "/v2.0/networks")["networks"] == []
    assert stack.api("GET", "/v2.0/routers")["routers"] == []
