"""The Neutron extensions of issue 12 on a real stratus-network (with a real identity):
agents from real host registrations, router extra routes and port extra DHCP options
through python-openstackclient, the options rendered for dnsmasq and read by the real
dnsmasq, and a fuzz of the new routes and fields (no 5xx, SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ADMIN_PASSWORD, BIN, IdentityServer, Postgres
from network_api import ADMIN, ALICE, NetApi, NetworkServer, in_process
from stratus.agent.network.drivers.dnsmasq import DnsmasqDriver
from stratus.agent.network.naming import Naming
from stratus.agent.network.sources import HttpSource
from stratus.common.clients import PasswordAuth
from stratus.contracts.network import HostState

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkServer]:
    root = tmp_path_factory.mktemp("netext")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    (root / "identity").mkdir()
    identity.prepare()
    identity.start()
    srv = NetworkServer(root, f"sqlite:///{root}/network.sqlite", identity)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()
    identity.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]


def osc(identity: IdentityServer, *args: str) -> Any:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(identity.clouds_yaml()),
           "OS_CLOUD": "stratus"}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        env.pop(key, None)
    wants_json = any(a in ("create", "list", "show") for a in args[:4])
    cmd = [str(BIN / "openstack"), *args, *(["-f", "json"] if wants_json else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if wants_json and proc.stdout.strip() else proc.stdout


def admin(network: NetworkServer) -> httpx.Client:
    return httpx.Client(base_url=network.url, timeout=60,
                        headers={"X-Auth-Token": network.identity.token()})


def test_agents_routes_and_dhcp_options_through_the_client(network: NetworkServer,
                                                           tmp_path: Path) -> None:
    ident = network.identity
    with admin(network) as c:
        # Two hosts register as their network agents do.
        for host, node in (("tnetimg-net1", True), ("tnetimg-cmp1", False)):
            resp = c.put(f"/v2.0/stratus-agent/hosts/{host}", json={"host": {
                "underlay_ip": "192.0.2.10", "network_node": node}})
            assert resp.status_code == 200, resp.text
    agents = osc(ident, "network", "agent", "list")
    assert sorted((a["Host"], a["Agent Type"]) for a in agents) == [
        ("tnetimg-cmp1", "Open vSwitch agent"), ("tnetimg-net1", "DHCP agent"),
        ("tnetimg-net1", "L3 agent"), ("tnetimg-net1", "Metadata agent"),
        ("tnetimg-net1", "Open vSwitch agent")]
    l3 = next(a for a in agents if a["Agent Type"] == "L3 agent")
    osc(ident, "network", "agent", "set", "--disable", "--description", "drain", l3["ID"])

    osc(ident, "network", "create", "ext-net")
    osc(ident, "subnet", "create", "--network", "ext-net", "--subnet-range", "10.0.0.0/24",
        "ext-sub")
    port = osc(ident, "port", "create", "--network", "ext-net", "--extra-dhcp-option",
               "name=tftp-server,value=10.0.0.2", "--extra-dhcp-option",
               "name=bootfile-name,value=pxelinux.0", "ext-port")
    assert sorted(o["opt_name"] for o in port["extra_dhcp_opts"]) == [
        "bootfile-name", "tftp-server"]
    osc(ident, "router", "create", "ext-router")
    osc(ident, "router", "add", "subnet", "ext-router", "ext-sub")
    osc(ident, "router", "add", "route", "--route", "destination=192.168.5.0/24,gateway=10.0.0.7",
        "--route", "destination=192.168.6.0/24,gateway=10.0.0.8", "ext-router")
    osc(ident, "router", "remove", "route", "--route",
        "destination=192.168.6.0/24,gateway=10.0.0.8", "ext-router")

    with admin(network) as c:
        shown = c.get(f"/v2.0/agents/{l3['ID']}").json()["agent"]
        assert shown["admin_state_up"] is False and shown["description"] == "drain"
        router = c.get("/v2.0/routers", params={"name": "ext-router"}).json()["routers"][0]
        assert router["routes"] == [{"destination": "192.168.5.0/24", "nexthop": "10.0.0.7"}]
        hosting = c.get(f"/v2.0/routers/{router['id']}/l3-agents").json()["agents"]
        assert [a["host"] for a in hosting] == ["tnetimg-net1"]
        doc = c.get("/v2.0/stratus-agent/hosts/tnetimg-net1").json()
    # The network node's document, rendered as the agent renders it, read by dnsmasq.
    state = HostState.from_dict(doc)
    (r,) = state.routers
    assert [(x.destination, x.nexthop) for x in r.routes] == [("192.168.5.0/24", "10.0.0.7")]
    (server,) = state.dhcp_servers
    driver = DnsmasqDriver(None, Naming(), str(tmp_path))  # type: ignore[arg-type]
    hosts = driver.render_hosts(server).splitlines()
    opts = driver.render_opts(server, state.network(server.network_id)).splitlines()
    assert any(",set:p" in h and port["mac_address"] in h for h in hosts)
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("".join(f"dhcp-host={h}\n" for h in hosts)
                    + "".join(f"dhcp-option={o}\n" for o in opts))
    check = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, (check.stderr, conf.read_text())


def test_each_hosts_l2_backend_as_its_agent_registers_it(network: NetworkServer) -> None:
    """The network agent's own registration (HttpSource) names its L2 backend; the client
    then lists a Linux bridge or an Open vSwitch agent for that host."""
    auth = PasswordAuth(network.identity.url, "admin", ADMIN_PASSWORD, "admin")
    url = f"{network.url}/v2.0/stratus-agent/hosts/{{host}}"
    for host, backend in (("tnetimg-lb1", "linuxbridge"), ("tnetimg-ovs1", "ovs")):
        HttpSource(url, host, auth, underlay_ip="192.0.2.21", l2_backend=backend).register()
    listed = {a["Host"]: (a["Agent Type"], a["Binary"])
              for a in osc(network.identity, "network", "agent", "list", "--long")}
    assert listed["tnetimg-lb1"] == ("Linux bridge agent", "neutron-linuxbridge-agent")
    assert listed["tnetimg-ovs1"] == ("Open vSwitch agent", "neutron-openvswitch-agent")
    with admin(network) as c:
        lb = c.get("/v2.0/agents", params={"host": "tnetimg-lb1"}).json()["agents"]
        assert [a["configurations"]["tunnel_types"] for a in lb] == [["vxlan"]]


FIELDS: dict[str, tuple[str, list[str]]] = {
    "/v2.0/subnetpools": ("subnetpool", [
        "prefixes", "min_prefixlen", "max_prefixlen", "default_prefixlen", "shared",
        "is_default", "address_scope_id", "default_quota", "ip_version", "name"]),
    "/v2.0/subnets": ("subnet", ["subnetpool_id", "prefixlen", "use_default_subnetpool",
                                 "cidr"]),
    "/v2.0/ports": ("port", ["extra_dhcp_opts"]),
}
ODD = [None, 7, -1, True, {}, [], "\x00", "x" * 70000, ["10.0.0.0/33"], [{"x": 1}], 2**40,
       "1" * 30, [None], [{"opt_name": None}], [{"opt_name": "mtu", "opt_value": {}}],
       [{"opt_name": "mtu", "opt_value": "1", "ip_version": "6"}]]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NetApi]:
    url = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"netextfuzz_{os.getpid()}")
    with in_process(tmp_path, url=url, raise_server_exceptions=False) as api:
        yield api


def requests(api: NetApi) -> Iterator[tuple[str, str, str, Any]]:
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    pool = api.ok("POST", "/v2.0/subnetpools", ALICE, json={"subnetpool": {
        "prefixes": ["10.50.0.0/16"], "min_prefixlen": 24}})["subnetpool"]
    port = api.port(net["id"], ALICE)
    router = api.router(ALICE)
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    api.ok("PUT", "/v2.0/stratus-agent/hosts/tnetimg-fuzz", ADMIN,
           json={"host": {"underlay_ip": "192.0.2.1", "network_node": True}})
    agent = api.ok("GET", "/v2.0/agents?agent_type=L3%20agent", ADMIN)["agents"][0]
    base = {"/v2.0/subnetpools": {"prefixes": ["10.60.0.0/16"]},
            "/v2.0/subnets": {"network_id": net["id"], "subnetpool_id": pool["id"]},
            "/v2.0/ports": {"network_id": net["id"]}}
    for path, (key, fields) in FIELDS.items():
        for field in fields:
            for value in ODD:
                body = {key: {**base[path], field: value}}
                yield ALICE, "POST", path, body
                item = {"/v2.0/subnetpools": pool["id"], "/v2.0/subnets": sub["id"],
                        "/v2.0/ports": port["id"]}[path]
                yield ALICE, "PUT", f"{path}/{item}", {key: {field: value}}
    for value in ODD:
        for action in ("add_extraroutes", "remove_extraroutes"):
            yield ALICE, "PUT", f"/v2.0/routers/{router['id']}/{action}", {
                "router": {"routes": value}}
            yield ALICE, "PUT", f"/v2.0/routers/{router['id']}/{action}", {
                "router": {"routes": [{"destination": value, "nexthop": value}]}}
        for field in ("admin_state_up", "description", "host"):
            yield ADMIN, "PUT", f"/v2.0/agents/{agent['id']}", {"agent": {field: value}}
        yield ADMIN, "POST", f"/v2.0/agents/{agent['id']}/l3-routers", {"router_id": value}
        yield ADMIN, "POST", f"/v2.0/agents/{agent['id']}/dhcp-networks", {"network_id": value}
        yield ADMIN, "POST", f"/v2.0/agents/{agent['id']}/l3-routers", value


def test_no_5xx_from_the_new_routes_and_fields(engine_api: NetApi) -> None:
    api = engine_api
    count = 0
    for token, method, path, body in requests(api):
        resp = api.call(method, path, token, content=json.dumps(body))
        count += 1
        assert resp.status_code < 500, (method, path, body, resp.text)
        if resp.status_code >= 400:
            assert resp.json()["NeutronError"]["message"], (method, path, body)
    assert count > 300, count
    # Still fine afterwards: a subnet from a pool, a port with options.
    net = api.network(token=ALICE)
    (pool,) = [p for p in api.ok("GET", "/v2.0/subnetpools", ALICE)["subnetpools"]
               if p["prefixes"] == ["10.50.0.0/16"]]
    made = api.call("POST", "/v2.0/subnets", ALICE, json={"subnet": {
        "network_id": net["id"], "subnetpool_id": pool["id"], "prefixlen": 24,
        "ip_version": 4}})  # the fuzz may have changed the pool's bounds: valid ones
    assert made.status_code == 201, made.text


def test_the_agent_installs_extra_routes_in_a_real_namespace() -> None:
    """ensure_extra_routes with the real ip(8) in a namespace (prefix tnetimg-)."""
    from stratus.agent.network.drivers.router import ensure_extra_routes
    from stratus.agent.runner import Runner
    from stratus.contracts.network import HostRoute, Router

    ns, runner = "tnetimg-xr", Runner()

    def routes() -> set[tuple[str, str]]:
        out = json.loads(runner.run(["ip", "-n", ns, "-j", "-4", "route", "show"]) or "[]")
        return {(r["dst"], r.get("gateway", "")) for r in out}

    runner.run(["ip", "netns", "add", ns], wrap=False)
    try:
        runner.run(["ip", "-n", ns, "link", "add", "qr-tnetimg", "type", "veth", "peer",
                    "name", "qr-tnetimgp"])  # no dummy module here: a veth pair in the ns
        runner.run(["ip", "-n", ns, "addr", "add", "10.0.0.1/24", "dev", "qr-tnetimg"])
        for dev in ("qr-tnetimg", "qr-tnetimgp"):
            runner.run(["ip", "-n", ns, "link", "set", dev, "up"])
        router = Router(id="r", routes=[HostRoute("192.168.5.0/24", "10.0.0.7"),
                                        HostRoute("192.168.6.9/32", "10.0.0.8"),
                                        HostRoute("192.168.7.0/24", "172.16.0.1")])
        ensure_extra_routes(runner, ns, router)  # the third: no such nexthop, logged
        assert {("192.168.5.0/24", "10.0.0.7"), ("192.168.6.9", "10.0.0.8")} <= routes()
        assert not any(d == "192.168.7.0/24" for d, _ in routes())
        router.routes = [HostRoute("192.168.6.9/32", "10.0.0.8")]
        ensure_extra_routes(runner, ns, router)
        assert routes() == {("10.0.0.0/24", ""), ("192.168.6.9", "10.0.0.8")}
        router.routes = []
        ensure_extra_routes(runner, ns, router)
        assert routes() == {("10.0.0.0/24", "")}  # the connected route is not ours
    finally:
        runner.run(["ip", "netns", "delete", ns], wrap=False, check=False)
