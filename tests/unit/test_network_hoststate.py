"""The host-state extension: what a host's network agent gets, in the agent's own model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.contracts.network import HostState

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def test_host_state_for_a_compute_host_and_a_network_node(api: NetApi) -> None:
    ext = api.network(name="public", **{"router:external": True,
                                        "provider:network_type": "flat",
                                        "provider:physical_network": "public"})
    api.subnet(ext["id"], "172.24.4.0/24", enable_dhcp=False)
    net = api.network(token=ALICE, name="app")
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE, dns_nameservers=["10.0.0.1"])
    vm1 = api.port(net["id"], ALICE)
    vm2 = api.port(net["id"], ALICE)
    for port, host in ((vm1, "cmp1"), (vm2, "cmp2")):
        api.ok("PUT", f"/v2.0/ports/{port['id']}", json={"port": {
            "binding:host_id": host, "device_owner": "compute:nova", "device_id": "vm"}})
    router = api.router(ALICE, external_gateway_info={"network_id": ext["id"]})
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    fip = api.ok("POST", "/v2.0/floatingips", ALICE, json={"floatingip": {
        "floating_network_id": ext["id"], "port_id": vm1["id"]}})["floatingip"]
    for host, ip, node in (("cmp1", "192.0.2.11", False), ("cmp2", "192.0.2.12", False),
                           ("net1", "192.0.2.10", True)):
        api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}", json={"host": {
            "underlay_ip": ip, "network_node": node}})

    doc = api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1")
    state = HostState.from_dict(doc)  # what the agent does with it
    assert state.host == "cmp1" and state.tunnel_peers == ["192.0.2.10", "192.0.2.12"]
    assert [p.id for p in state.ports] == [vm1["id"]]
    port = state.ports[0]
    assert port.mac_address == vm1["mac_address"] and port.ips == [
        vm1["fixed_ips"][0]["ip_address"]]
    assert [n.id for n in state.networks] == [net["id"]]
    assert state.networks[0].segmentation_type == "vxlan" and state.networks[0].mtu == 1450
    assert state.dhcp_servers == [] and state.routers == []
    group = state.security_group(port.security_groups[0])
    assert group is not None and group.name == "default"
    # The default group's members (both VMs) are resolved for its remote-group rules.
    assert sorted(group.member_ips) == sorted(
        p["fixed_ips"][0]["ip_address"] for p in (vm1, vm2))

    node = HostState.from_dict(api.ok("GET", "/v2.0/stratus/host-state",
                                      params={"host": "net1"}))
    assert node.ports == [] and {n.id for n in node.networks} == {net["id"], ext["id"]}
    dhcp = node.dhcp_servers[0]
    assert dhcp.network_id == net["id"] and dhcp.fixed_ips[0].ip_address == "10.0.0.2"
    leases = {h.mac_address: h.ip_address for h in dhcp.hosts}
    assert leases[vm1["mac_address"]] == vm1["fixed_ips"][0]["ip_address"]
    (r,) = node.routers
    assert r.id == router["id"] and r.enable_snat
    assert [i.ip_address for i in r.interfaces] == ["10.0.0.1"] and r.interfaces[0].prefixlen == 24
    assert r.gateway is not None and r.gateway.network_id == ext["id"]
    assert [(f.floating_ip_address, f.fixed_ip_address) for f in r.floating_ips] == [
        (fip["floating_ip_address"], vm1["fixed_ips"][0]["ip_address"])]
    hosts = api.ok("GET", "/v2.0/stratus-agent/hosts")["hosts"]
    assert [(h["host"], h["underlay_ip"], h["network_node"]) for h in hosts] == [
        ("cmp1", "192.0.2.11", False), ("cmp2", "192.0.2.12", False), ("net1", "192.0.2.10", True)]
    assert api.call("GET", "/v2.0/stratus-agent/hosts", ALICE).status_code == 403
    # An agent that only polls registers itself with the query.
    polled = api.ok("GET", "/v2.0/stratus/host-state", params={
        "host": "cmp3", "underlay_ip": "192.0.2.13", "network_node": "false"})
    assert "192.0.2.13" not in polled["tunnel_peers"]
    assert "192.0.2.13" in api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1")["tunnel_peers"]
    # Overriding the role for one call.
    assert api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1",
                  params={"network_node": "true"})["routers"]


def test_host_state_is_admin_only_and_checks_input(api: NetApi) -> None:
    assert api.call("GET", "/v2.0/stratus-agent/hosts/cmp1", ALICE).status_code == 403
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1", ALICE, json={"host": {
        "underlay_ip": "192.0.2.1"}}).status_code == 403
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1", ADMIN, json={"host": {
        "underlay_ip": "nope"}}).status_code == 400
    assert api.call("GET", "/v2.0/stratus/host-state", ADMIN).status_code == 400
    empty = HostState.from_dict(api.ok("GET", "/v2.0/stratus-agent/hosts/nobody"))
    assert empty.ports == [] and empty.networks == []


def test_port_status_follows_the_agent_reports(api: NetApi) -> None:
    net = api.network(token=ALICE, name="app")
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    vm1, vm2 = api.port(net["id"], ALICE), api.port(net["id"], ALICE)
    assert vm1["status"] == "DOWN"
    for port in (vm1, vm2):
        bound = api.ok("PUT", f"/v2.0/ports/{port['id']}", json={"port": {
            "binding:host_id": "cmp1", "device_owner": "compute:nova", "device_id": "vm"}})
        assert bound["port"]["status"] == "DOWN"  # bound, but not plugged yet

    def status(port_id: str) -> str:
        return str(api.ok("GET", f"/v2.0/ports/{port_id}", ALICE)["port"]["status"])

    def report(host: str, active: list[str], down: list[str]) -> dict[str, list[str]]:
        return dict(api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}/ports", json={
            "ports": {"active": active, "down": down}})["ports"])

    # Another host cannot make cmp1's port ACTIVE.
    assert report("cmp2", [vm1["id"]], []) == {"active": [], "down": []}
    assert status(vm1["id"]) == "DOWN"
    assert report("cmp1", [vm1["id"]], [vm2["id"]]) == {"active": [vm1["id"]], "down": []}
    assert status(vm1["id"]) == "ACTIVE" and status(vm2["id"]) == "DOWN"
    # Level-triggered: the same report changes nothing; a port left out goes DOWN.
    assert report("cmp1", [vm1["id"]], []) == {"active": [], "down": []}
    assert report("cmp1", [vm2["id"]], []) == {"active": [vm2["id"]], "down": [vm1["id"]]}
    # Administratively down or moved to another host: DOWN until that host reports it.
    assert api.ok("PUT", f"/v2.0/ports/{vm2['id']}", ALICE, json={"port": {
        "admin_state_up": False}})["port"]["status"] == "DOWN"
    report("cmp1", [vm2["id"]], [])
    assert status(vm2["id"]) == "DOWN"
    report("cmp1", [vm1["id"]], [])
    moved = api.ok("PUT", f"/v2.0/ports/{vm1['id']}", json={"port": {"binding:host_id": "cmp2"}})
    assert moved["port"]["status"] == "DOWN"
    report("cmp1", [vm1["id"]], [])
    assert status(vm1["id"]) == "DOWN"
    report("cmp2", [vm1["id"]], [])
    assert status(vm1["id"]) == "ACTIVE"

    # DHCP and router ports: only a registered network node reports them.
    router = api.router(ALICE)
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    infra = [p["id"] for p in api.ok("GET", "/v2.0/ports", params={
        "network_id": net["id"], "device_owner": ["network:dhcp", "network:router_interface"]}
        )["ports"]]
    assert len(infra) == 2
    report("cmp1", infra, [])
    assert {status(i) for i in infra} == {"DOWN"}
    api.ok("PUT", "/v2.0/stratus-agent/hosts/net1", json={"host": {"network_node": True}})
    assert sorted(report("net1", infra, [])["active"]) == sorted(infra)
    assert {status(i) for i in infra} == {"ACTIVE"}
    assert report("net1", [], infra[:1])["down"] == infra[:1]
    assert status(vm1["id"]) == "ACTIVE"  # a network node's report leaves cmp2's ports alone

    body: object
    for body in ({"ports": {"active": "x"}}, {"ports": {"up": []}}, {"active": []},
                 {"ports": {"active": [1]}}):
        bad = api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1/ports", ADMIN, json=body)
        assert bad.status_code == 400, body
    assert api.call("PUT", "/v2.0/stratus-agent/hosts/cmp1/ports", ALICE, json={
        "ports": {"active": []}}).status_code == 403


def generation(api: NetApi, host: str = "cmp1") -> int:
    gen = api.ok("GET", f"/v2.0/stratus-agent/hosts/{host}")["generation"]
    assert isinstance(gen, int)
    return gen


HOSTS = ("cmp1", "cmp2", "net1")  # two compute hosts and a network node
EVERY = set(HOSTS)
NODE = {"net1"}


def test_every_change_bumps_the_generation_of_the_hosts_it_touches_and_no_other(
        api: NetApi) -> None:
    """Per-host generations: a change bumps the hosts whose state documents it may
    change (conservatively: every host when that cannot be told), and no other."""

    def generations() -> dict[str, int]:
        return {h: generation(api, h) for h in HOSTS}

    def bumps(what: str, fn: Any, woken: set[str]) -> Any:
        before = generations()
        result = fn()
        after = generations()
        moved = {h for h in HOSTS if after[h] != before[h]}
        assert moved == woken, f"{what} bumped {sorted(moved)}, not {sorted(woken)}"
        assert all(after[h] > before[h] for h in moved), what
        return result

    def register(host: str, node: bool) -> Any:
        return api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}", json={
            "host": {"underlay_ip": f"192.0.2.{11 + HOSTS.index(host)}", "network_node": node}})

    def bind(port: dict[str, Any], host: str) -> Any:
        return api.ok("PUT", f"/v2.0/ports/{port['id']}", json={"port": {
            "binding:host_id": host, "device_owner": "compute:nova"}})

    register("cmp2", False)
    register("net1", True)
    bumps("a new registration (every host's tunnel peers)",
          lambda: register("cmp1", False), EVERY)
    bumps("the same registration again", lambda: register("cmp1", False), set())
    net = bumps("a network", lambda: api.network(token=ALICE, name="app"), NODE)
    sub = bumps("a subnet (its DHCP port: every host)",
                lambda: api.subnet(net["id"], "10.0.0.0/24", ALICE), EVERY)
    port = bumps("an unbound port", lambda: api.port(net["id"], ALICE), NODE)
    bumps("a binding", lambda: bind(port, "cmp1"), {"cmp1", *NODE})
    # the agent's own reports: a status change is not a change of its desired state
    bumps("a port status report", lambda: api.ok(
        "PUT", "/v2.0/stratus-agent/hosts/cmp1/ports", json={"ports": {"active": [port["id"]]}}),
        set())
    assert api.ok("GET", f"/v2.0/ports/{port['id']}")["port"]["status"] == "ACTIVE"
    bumps("a read", lambda: api.ok("GET", "/v2.0/ports"), set())
    bumps("a quota", lambda: api.ok("PUT", "/v2.0/quotas/p-alice", json={"quota": {
        "network": 5}}), set())
    group = port["security_groups"][0]
    bumps("a security group rule of cmp1's port's group", lambda: api.ok(
        "POST", "/v2.0/security-group-rules", ALICE, json={"security_group_rule": {
            "security_group_id": group, "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22}}), {"cmp1", *NODE})
    # A port on cmp2 in the same group: cmp1's document lists the group's member addresses.
    peer = bumps("a port of the same group (a new member address)",
                 lambda: api.port(net["id"], ALICE), {"cmp1", *NODE})
    bumps("bound to cmp2", lambda: bind(peer, "cmp2"), EVERY)
    other = api.ok("POST", "/v2.0/security-groups", ALICE, json={
        "security_group": {"name": "other"}})["security_group"]
    lone = bumps("a port of another group", lambda: api.port(
        net["id"], ALICE, security_groups=[other["id"]]), NODE)
    bumps("bound to cmp2", lambda: bind(lone, "cmp2"), {"cmp2", *NODE})
    bumps("a rule of the other group", lambda: api.ok(
        "POST", "/v2.0/security-group-rules", ALICE, json={"security_group_rule": {
            "security_group_id": other["id"], "direction": "ingress", "protocol": "icmp"}}),
        {"cmp2", *NODE})
    bumps("a rule of cmp1's group naming the other group as remote", lambda: api.ok(
        "POST", "/v2.0/security-group-rules", ALICE, json={"security_group_rule": {
            "security_group_id": group, "direction": "ingress", "protocol": "udp",
            "remote_group_id": other["id"]}}), EVERY)
    bumps("the lone port's name (in a remote group of cmp1's: woken too)", lambda: api.ok(
        "PUT", f"/v2.0/ports/{lone['id']}", ALICE, json={"port": {"name": "x"}}), EVERY)
    bumps("cmp2's port moved out of cmp1's port's group", lambda: api.ok(
        "PUT", f"/v2.0/ports/{peer['id']}", ALICE, json={"port": {
            "security_groups": [other["id"]]}}), EVERY)
    router = bumps("a router", lambda: api.router(ALICE), NODE)
    bumps("a router interface", lambda: api.ok(
        "PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
        json={"subnet_id": sub["id"]}), EVERY)
    bumps("a port name", lambda: api.ok("PUT", f"/v2.0/ports/{port['id']}", ALICE,
                                        json={"port": {"name": "renamed"}}), {"cmp1", *NODE})
    bumps("a refused request", lambda: api.call("POST", "/v2.0/ports", ALICE, json={
        "port": {"network_id": net["id"], "mac_address": port["mac_address"]}}), set())
    bumps("a port deleted", lambda: api.ok("DELETE", f"/v2.0/ports/{port['id']}", ALICE,
                                           status=204), {"cmp1", *NODE})
    bumps("a network deleted with its subnets' ports", lambda: (
        api.ok("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", ALICE,
               json={"subnet_id": sub["id"]}),
        api.ok("DELETE", f"/v2.0/ports/{lone['id']}", ALICE, status=204),
        api.ok("DELETE", f"/v2.0/ports/{peer['id']}", ALICE, status=204),
        api.ok("DELETE", f"/v2.0/networks/{net['id']}", ALICE, status=204)), EVERY)
    # A host asked for as a network node reads the network nodes' generation too.
    node_view = api.ok("GET", "/v2.0/stratus-agent/hosts/cmp1",
                       params={"network_node": "true"})["generation"]
    assert node_view >= generation(api, "net1") > 0


def test_the_long_poll_answers_as_soon_as_the_generation_moves(api: NetApi) -> None:
    net = api.network(name="wake-up")
    since = generation(api)
    answers: list[dict[str, Any]] = []
    poll = threading.Thread(target=lambda: answers.append(api.ok(
        "GET", "/v2.0/stratus/host-state",
        params={"host": "cmp1", "since": str(since), "wait": "30"})))
    poll.start()
    try:
        # Several long-polls at once: none holds a worker thread, reads keep working.
        others = [threading.Thread(target=lambda: api.ok(
            "GET", "/v2.0/stratus-agent/hosts/cmp2",
            params={"since": str(since), "wait": "1"})) for _ in range(3)]
        for t in others:
            t.start()
        api.port(net["id"], **{"binding:host_id": "cmp1", "device_owner": "compute:nova"})
        poll.join(timeout=20)
        assert not poll.is_alive(), "the long-poll did not return on a change"
        for t in others:
            t.join(timeout=20)
    finally:
        poll.join(timeout=40)
    (doc,) = answers
    assert doc["generation"] > since and doc["host"] == "cmp1"
    assert HostState.from_dict(doc).host == "cmp1"  # old agents ignore the key
    # No change: it waits the time asked (cut to 30 s), then answers the same generation.
    assert api.ok("GET", "/v2.0/stratus/host-state", params={
        "host": "cmp1", "since": str(doc["generation"]), "wait": "0.3"})[
        "generation"] == doc["generation"]
    # A generation the caller holds that is not the current one answers at once.
    assert api.ok("GET", "/v2.0/stratus/host-state", params={
        "host": "cmp1", "since": "0", "wait": "30"})["generation"] == doc["generation"]
    assert net["id"]
    for params, word in (({"wait": "soon", "since": "1"}, "wait"),
                         ({"wait": "-1", "since": "1"}, "wait"),
                         ({"wait": "nan", "since": "1"}, "wait"),
                         ({"wait": "5", "since": "-3"}, "since"),
                         ({"wait": "5", "since": "x"}, "since")):
        resp = api.call("GET", "/v2.0/stratus/host-state", params={"host": "cmp1", **params})
        assert resp.status_code == 400 and word in resp.json()["NeutronError"]["message"]
    assert api.call("GET", "/v2.0/stratus/host-state", ALICE, params={
        "host": "cmp1", "since": "1", "wait": "5"}).status_code == 403
