"""stratus-network as a real process next to a real stratus-identity.

python-openstackclient drives every resource end to end (create, list, show,
set, delete); 200 concurrent port creations on a /24 get 200 distinct
addresses on SQLite and on PostgreSQL, and a full subnet answers a clear 409.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers import BIN, IdentityServer, Postgres
from network_api import NetworkServer

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("net-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


def start_network(root: Path, url: str, identity: IdentityServer) -> NetworkServer:
    srv = NetworkServer(root, url, identity)
    srv.prepare()
    srv.start()
    return srv


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            identity: IdentityServer) -> Iterator[NetworkServer]:
    root = tmp_path_factory.mktemp(f"network-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/network.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"network_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = start_network(root, url, identity)
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]


def osc(identity: IdentityServer, *args: str) -> object:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(identity.clouds_yaml()),
           "OS_CLOUD": "stratus"}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        env.pop(key, None)
    wants_json = any(a in ("create", "list", "show") for a in args[:4])
    cmd = [str(BIN / "openstack"), *args, *(["-f", "json"] if wants_json else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if wants_json and proc.stdout.strip() else proc.stdout


# The client run is engine-independent (and the slowest test): once, on SQLite.
@pytest.mark.parametrize("network", ["sqlite"], indirect=True)
def test_python_openstackclient_end_to_end(network: NetworkServer) -> None:
    ident = network.identity

    def run(*args: str) -> dict:
        out = osc(ident, *args)
        assert isinstance(out, dict | list)
        return out  # type: ignore[return-value]

    # Networks and subnets.
    net = run("network", "create", "osc-net")
    assert net["status"] == "ACTIVE" and net["mtu"] == 1450
    assert net["provider:network_type"] == "vxlan" and net["provider:segmentation_id"]
    sub = run("subnet", "create", "--network", "osc-net", "--subnet-range", "10.10.0.0/24",
              "--dns-nameserver", "10.10.0.1", "osc-sub")
    assert sub["gateway_ip"] == "10.10.0.1" and sub["allocation_pools"] == [
        {"start": "10.10.0.2", "end": "10.10.0.254"}]
    assert "osc-net" in [n["Name"] for n in run("network", "list")]
    assert "10.10.0.0/24" in [s["Subnet"] for s in run("subnet", "list")]
    osc(ident, "network", "set", "--description", "made by osc", "osc-net")
    assert run("network", "show", "osc-net")["description"] == "made by osc"
    osc(ident, "subnet", "set", "--no-dhcp", "osc-sub")
    assert run("subnet", "show", "osc-sub")["enable_dhcp"] is False
    ext = run("network", "create", "--external", "--provider-network-type", "flat",
              "--provider-physical-network", "public", "osc-public")
    assert ext["router:external"] is True
    run("subnet", "create", "--network", "osc-public", "--subnet-range", "172.24.4.0/24",
        "--no-dhcp", "osc-public-sub")

    # Ports.
    port = run("port", "create", "--network", "osc-net", "--fixed-ip",
               "subnet=osc-sub,ip-address=10.10.0.10", "osc-port")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.10.0.10"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert "osc-port" in [p["Name"] for p in run("port", "list")]
    osc(ident, "port", "set", "--name", "osc-port2", "osc-port")
    assert run("port", "show", "osc-port2")["id"] == port["id"]

    # Routers.
    router = run("router", "create", "osc-router")
    osc(ident, "router", "set", "--external-gateway", "osc-public", "osc-router")
    osc(ident, "router", "add", "subnet", "osc-router", "osc-sub")
    shown = run("router", "show", "osc-router")
    assert shown["external_gateway_info"]["network_id"] == ext["id"]
    assert "osc-router" in [r["Name"] for r in run("router", "list")]

    # Floating IPs.
    fip = run("floating", "ip", "create", "osc-public")
    assert fip["floating_ip_address"].startswith("172.24.4.")
    osc(ident, "floating", "ip", "set", "--port", port["id"], fip["id"])
    shown = run("floating", "ip", "show", fip["id"])
    assert shown["fixed_ip_address"] == "10.10.0.10" and shown["router_id"] == router["id"]
    assert fip["id"] in [f["ID"] for f in run("floating", "ip", "list")]
    osc(ident, "floating", "ip", "unset", "--port", fip["id"])
    assert run("floating", "ip", "show", fip["id"])["port_id"] is None

    # Security groups and rules.
    sg = run("security", "group", "create", "--description", "web servers", "osc-web")
    assert {r["direction"] for r in sg["rules"]} == {"egress"} if "rules" in sg else True
    rule = run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80",
               "osc-web")
    assert rule["port_range_min"] == 80 and rule["direction"] == "ingress"
    names = [g["Name"] for g in run("security", "group", "list")]
    assert {"default", "osc-web"} <= set(names)
    osc(ident, "security", "group", "set", "--description", "web", "osc-web")
    assert run("security", "group", "show", "osc-web")["description"] == "web"
    assert rule["id"] in [r["ID"] for r in run("security", "group", "rule", "list", "osc-web")]
    osc(ident, "security", "group", "rule", "delete", rule["id"])
    osc(ident, "port", "set", "--security-group", "osc-web", "osc-port2")

    # Deletes, in dependency order.
    osc(ident, "floating", "ip", "delete", fip["id"])
    osc(ident, "router", "remove", "subnet", "osc-router", "osc-sub")
    osc(ident, "router", "unset", "--external-gateway", "osc-router")
    osc(ident, "router", "delete", "osc-router")
    osc(ident, "port", "delete", "osc-port2")
    osc(ident, "security", "group", "delete", "osc-web")
    osc(ident, "subnet", "delete", "osc-sub")
    osc(ident, "network", "delete", "osc-net")
    left = [n["Name"] for n in run("network", "list")]
    assert "osc-net" not in left and "osc-public" in left


def admin_client(network: NetworkServer) -> httpx.Client:
    token = network.identity.token()
    return httpx.Client(base_url=network.url, headers={"X-Auth-Token": token}, timeout=60)


def test_200_concurrent_ports_get_distinct_addresses(network: NetworkServer) -> None:
    with admin_client(network) as client:
        net = client.post("/v2.0/networks", json={"network": {"name": "conc"}}).json()["network"]
        sub = client.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.20.0.0/24", "ip_version": 4}})
        assert sub.status_code == 201, sub.text

        def create(i: int) -> httpx.Response:
            return client.post("/v2.0/ports", json={"port": {
                "network_id": net["id"], "name": f"p{i}"}})

        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(create, range(200)))
        assert [r.status_code for r in answers] == [201] * 200, {
            r.status_code: r.text for r in answers if r.status_code != 201}
        ports = [r.json()["port"] for r in answers]
        ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
        macs = [p["mac_address"] for p in ports]
        assert len(set(ips)) == 200 and len(set(macs)) == 200
        # What the API lists agrees (the DHCP port holds one more address).
        listed = client.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]
        all_ips = [ip["ip_address"] for p in listed for ip in p["fixed_ips"]]
        assert len(all_ips) == len(set(all_ips)) == 201
        assert "10.20.0.1" not in all_ips  # the gateway is never handed out


def test_a_full_subnet_answers_a_clear_409(network: NetworkServer) -> None:
    with admin_client(network) as client:
        net = client.post("/v2.0/networks", json={"network": {"name": "tiny"}}).json()["network"]
        client.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.30.0.0/29", "ip_version": 4}})
        # .1 gateway, .2 DHCP, .3-.6 for ports: 4 of 10 concurrent requests succeed.
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda _i: client.post("/v2.0/ports", json={"port": {
                "network_id": net["id"]}}), range(10)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * 4 + [409] * 6, [r.text for r in answers]
        err = next(r for r in answers if r.status_code == 409).json()["NeutronError"]
        assert err["type"] == "IpAddressGenerationFailure"
        assert err["message"] == f"No more IP addresses available on network {net['id']}."
