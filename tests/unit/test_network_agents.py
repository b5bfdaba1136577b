"""Network agents, the scheduler views, router extra routes and external subnets,
in-process (the extensions of issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from network_api import ADMIN, ALICE, BOB, NetApi, in_process
from stratus.common.timeutil import utcnow
from stratus.network import models as m

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def register(api: NetApi, host: str, node: bool) -> None:
    api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}", ADMIN,
           json={"host": {"underlay_ip": "10.0.0.5", "network_node": node}})


def agents(api: NetApi, query: str = "") -> list[dict[str, Any]]:
    return list(api.ok("GET", f"/v2.0/agents{query}", ADMIN)["agents"])


def by_type(api: NetApi, agent_type: str, host: str) -> dict[str, Any]:
    (agent,) = [a for a in agents(api) if a["agent_type"] == agent_type and a["host"] == host]
    return agent


def age_host(api: NetApi, host: str, seconds: int) -> None:
    assert api.core is not None
    with api.core.db.session() as s, s.begin():
        s.execute(sa.update(m.AgentHost).where(m.AgentHost.host == host)
                  .values(updated_at=utcnow() - timedelta(seconds=seconds)))


def test_extensions_are_advertised() -> None:
    from stratus.network.api.extensions import EXTENSIONS

    aliases = {e[0] for e in EXTENSIONS}
    assert {"agent", "l3_agent_scheduler", "dhcp_agent_scheduler", "extraroute",
            "extraroute-atomic", "subnet_allocation", "default-subnetpools",
            "subnet-external-network", "extra_dhcp_opt"} <= aliases


def test_agents_per_host_as_neutron_shows_them(api: NetApi) -> None:
    assert agents(api) == []
    register(api, "net1", True)
    register(api, "cmp1", False)
    rows = agents(api)
    assert sorted((a["host"], a["agent_type"]) for a in rows) == [
        ("cmp1", "Open vSwitch agent"), ("net1", "DHCP agent"), ("net1", "L3 agent"),
        ("net1", "Metadata agent"), ("net1", "Open vSwitch agent")]
    l3 = by_type(api, "L3 agent", "net1")
    assert l3["binary"] == "neutron-l3-agent" and l3["topic"] == "l3_agent"
    assert l3["alive"] is True and l3["admin_state_up"] is True
    assert l3["availability_zone"] == "nova" and l3["description"] is None
    assert {"id", "heartbeat_timestamp", "created_at", "started_at", "configurations",
            "resources_synced", "resource_versions"} <= set(l3)
    # Stable ids; show, filters and fields.
    assert api.ok("GET", f"/v2.0/agents/{l3['id']}", ADMIN)["agent"] == l3
    assert [a["host"] for a in agents(api, "?agent_type=DHCP%20agent")] == ["net1"]
    assert agents(api, "?host=cmp1&fields=agent_type") == [{"agent_type": "Open vSwitch agent"}]
    assert l3["configurations"] == {"agent_mode": "legacy"}
    # Admin only, as in Neutron: a project lists none and finds none.
    assert api.ok("GET", "/v2.0/agents", ALICE) == {"agents": []}
    assert api.call("GET", f"/v2.0/agents/{l3['id']}", ALICE).status_code == 404


def test_alive_follows_the_hosts_registrations(api: NetApi) -> None:
    register(api, "cmp1", False)
    age_host(api, "cmp1", 600)
    assert by_type(api, "Open vSwitch agent", "cmp1")["alive"] is False
    register(api, "cmp1", False)  # the agent's next pass
    assert by_type(api, "Open vSwitch agent", "cmp1")["alive"] is True


def test_update_and_delete_agents(api: NetApi) -> None:
    register(api, "net1", True)
    dhcp = by_type(api, "DHCP agent", "net1")
    url = f"/v2.0/agents/{dhcp['id']}"
    up = api.ok("PUT", url, ADMIN, json={"agent": {"admin_state_up": False,
                                                  "description": "draining"}})["agent"]
    assert up["admin_state_up"] is False and up["description"] == "draining"
    assert by_type(api, "DHCP agent", "net1")["admin_state_up"] is False
    cleared = api.ok("PUT", url, ADMIN, json={"agent": {"description": None}})["agent"]
    assert cleared["description"] is None and cleared["admin_state_up"] is False
    for body in ({"agent": {"host": "x"}}, {"agent": {"admin_state_up": "maybe"}}, {"x": 1}):
        assert api.call("PUT", url, ADMIN, json=body).status_code == 400
    assert api.call("PUT", url, ALICE, json={"agent": {"description": "x"}}).status_code == 403
    assert api.call("DELETE", url, ALICE).status_code == 403
    age_host(api, "net1", 5)  # its last registration, before the delete
    api.ok("DELETE", url, ADMIN)
    assert api.call("GET", url, ADMIN).status_code == 404
    assert "DHCP agent" not in {a["agent_type"] for a in agents(api)}
    # The host's agent registers again: the agent is back, with the defaults.
    register(api, "net1", True)
    back = api.ok("GET", url, ADMIN)["agent"]
    assert back["admin_state_up"] is True and back["description"] is None
    missing = api.call("GET", "/v2.0/agents/nope", ADMIN)
    assert missing.status_code == 404 and missing.json()["NeutronError"]["type"] == (
        "AgentNotFound")


def test_which_agents_host_a_router_or_a_network(api: NetApi) -> None:
    register(api, "net1", True)
    register(api, "net2", True)
    register(api, "cmp1", False)
    net = api.network(token=ALICE)
    api.subnet(net["id"], "10.0.0.0/24", ALICE)  # DHCP on: a DHCP port
    quiet = api.network(token=ALICE)
    api.subnet(quiet["id"], "10.1.0.0/24", ALICE, enable_dhcp=False)
    router = api.router(ALICE)
    hosting = api.ok("GET", f"/v2.0/routers/{router['id']}/l3-agents", ADMIN)["agents"]
    assert sorted(a["host"] for a in hosting) == ["net1", "net2"]
    assert {a["agent_type"] for a in hosting} == {"L3 agent"}
    dhcp = api.ok("GET", f"/v2.0/networks/{net['id']}/dhcp-agents", ADMIN)["agents"]
    assert sorted(a["host"] for a in dhcp) == ["net1", "net2"]
    assert api.ok("GET", f"/v2.0/networks/{quiet['id']}/dhcp-agents", ADMIN)["agents"] == []
    l3 = by_type(api, "L3 agent", "net1")
    routers = api.ok("GET", f"/v2.0/agents/{l3['id']}/l3-routers", ADMIN)["routers"]
    assert [r["id"] for r in routers] == [router["id"]]
    d = by_type(api, "DHCP agent", "net2")
    nets = api.ok("GET", f"/v2.0/agents/{d['id']}/dhcp-networks", ADMIN)["networks"]
    assert [n["id"] for n in nets] == [net["id"]]
    # The wrong kind of agent, a missing router, a non-admin: 404 / 404 / 403.
    assert api.call("GET", f"/v2.0/agents/{d['id']}/l3-routers", ADMIN).status_code == 404
    assert api.call("GET", "/v2.0/routers/nope/l3-agents", ADMIN).status_code == 404
    assert api.call("GET", f"/v2.0/routers/{router['id']}/l3-agents",
                    ALICE).status_code == 403
    # An L3 agent adding a router it hosts: a no-op (201), as in Neutron.
    add = f"/v2.0/agents/{l3['id']}/l3-routers"
    assert api.call("POST", add, ADMIN, json={"router_id": router["id"]}).status_code == 201
    assert api.call("POST", add, ADMIN, json=["x"]).status_code == 400
    assert api.call("POST", add, ADMIN, json={"router_id": 5}).status_code == 400
    # Removed from net1's L3 agent: net1's state document drops it, net2 keeps it.
    api.ok("DELETE", f"{add}/{router['id']}", ADMIN)
    hosting = api.ok("GET", f"/v2.0/routers/{router['id']}/l3-agents", ADMIN)["agents"]
    assert [a["host"] for a in hosting] == ["net2"]
    assert api.ok("GET", add, ADMIN)["routers"] == []
    assert api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN)["routers"] == []
    assert len(api.ok("GET", "/v2.0/stratus-agent/hosts/net2", ADMIN)["routers"]) == 1
    resp = api.call("DELETE", f"{add}/{router['id']}", ADMIN)
    assert resp.status_code == 409
    assert resp.json()["NeutronError"]["type"] == "RouterNotHostedByL3Agent"
    assert api.call("POST", add, ADMIN, json={"router_id": router["id"]}).status_code == 201
    assert len(api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN)["routers"]) == 1
    # DHCP: a served network is a 409 to add; removing it stops net2 serving it.
    dadd = f"/v2.0/agents/{d['id']}/dhcp-networks"
    resp = api.call("POST", dadd, ADMIN, json={"network_id": net["id"]})
    assert resp.status_code == 409
    assert resp.json()["NeutronError"]["type"] == "NetworkHostedByDHCPAgent"
    api.ok("DELETE", f"{dadd}/{net['id']}", ADMIN)
    served = api.ok("GET", "/v2.0/stratus-agent/hosts/net2", ADMIN)["dhcp_servers"]
    assert served == []
    assert len(api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN)["dhcp_servers"]) == 1
    # A network without DHCP added to an agent is listed as hosted (nothing to serve yet).
    assert api.call("POST", dadd, ADMIN, json={"network_id": quiet["id"]}).status_code == 201
    assert [n["id"] for n in api.ok("GET", dadd, ADMIN)["networks"]] == [quiet["id"]]
    assert api.call("DELETE", f"{dadd}/nope", ADMIN).status_code == 404
    assert api.call("DELETE", f"{dadd}/{quiet['id']}", ALICE).status_code == 403


def routed(api: NetApi) -> tuple[dict[str, Any], str]:
    net = api.network(token=ALICE)
    sub = api.subnet(net["id"], "10.0.0.0/24", ALICE)
    router = api.router(ALICE)
    api.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
           json={"subnet_id": sub["id"]})
    return router, f"/v2.0/routers/{router['id']}"


def test_extra_routes_put_add_remove(api: NetApi) -> None:
    router, url = routed(api)
    a = {"destination": "192.168.1.0/24", "nexthop": "10.0.0.10"}
    b = {"destination": "192.168.2.0/24", "nexthop": "10.0.0.11"}
    c = {"destination": "192.168.3.0/24", "nexthop": "10.0.0.12"}
    assert api.ok("PUT", url, ALICE, json={"router": {"routes": [a]}})["router"]["routes"] == [a]
    got = api.ok("PUT", f"{url}/add_extraroutes", ALICE,
                 json={"router": {"routes": [a, b, c]}})["router"]
    assert got["routes"] == [a, b, c] and got["id"] == router["id"]
    got = api.ok("PUT", f"{url}/remove_extraroutes", ALICE,
                 json={"router": {"routes": [b, {"destination": "1.2.3.0/24",
                                                 "nexthop": "9.9.9.9"}]}})["router"]
    assert got["routes"] == [a, c]
    assert api.ok("GET", url, ALICE)["router"]["routes"] == [a, c]
    # The host-state document carries them to the network nodes.
    register(api, "net1", True)
    state = api.ok("GET", "/v2.0/stratus-agent/hosts/net1", ADMIN)
    (r,) = state["routers"]
    assert r["routes"] == [a, c]
    # An interface a route's nexthop needs stays (Neutron's 409); without routes it goes.
    sub_id = api.ok("GET", "/v2.0/subnets?cidr=10.0.0.0/24", ALICE)["subnets"][0]["id"]
    resp = api.call("PUT", f"{url}/remove_router_interface", ALICE, json={"subnet_id": sub_id})
    assert resp.status_code == 409
    assert resp.json()["NeutronError"]["type"] == "RouterInterfaceInUseByRoute"
    api.ok("PUT", url, ALICE, json={"router": {"routes": None}})
    api.ok("PUT", f"{url}/remove_router_interface", ALICE, json={"subnet_id": sub_id})


@pytest.mark.parametrize(("body", "words"), [
    ({"router": {"routes": [{"destination": "192.168.9.0/24", "nexthop": "172.16.0.1"}]}},
     "not connected"),
    ({"router": {"routes": [{"destination": "192.168.9.1/24", "nexthop": "10.0.0.5"}]}},
     "host bits"),
    ({"router": {"routes": [{"destination": "192.168.9.0/24"}]}}, "exactly"),
    ({"router": {"routes": "x"}}, "a list"),
    ({"router": {"routes": [], "name": "x"}}, "Unrecognized"),
    ({"router": {"routes": [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.5"}
                            for i in range(31)]}}, "maximum of 30"),
    ([], "Resource body"),
])
def test_bad_extra_routes_are_400_and_change_nothing(api: NetApi, body: Any,
                                                     words: str) -> None:
    _, url = routed(api)
    resp = api.call("PUT", f"{url}/add_extraroutes", ALICE, json=body)
    assert resp.status_code == 400 and words in resp.json()["NeutronError"]["message"], (
        resp.text)
    assert api.ok("GET", url, ALICE)["router"]["routes"] == []
    assert api.call("PUT", f"{url}/add_extraroutes", BOB,
                    json={"router": {"routes": []}}).status_code == 404


def test_external_subnets_are_visible_and_say_so(api: NetApi) -> None:
    public = api.network(name="public", **{"router:external": True,
                                            "provider:network_type": "flat",
                                            "provider:physical_network": "public"})
    ext = api.subnet(public["id"], "172.24.4.0/24", enable_dhcp=False)
    assert ext["router:external"] is True
    mine = api.network(token=ALICE)
    own = api.subnet(mine["id"], "10.0.0.0/24", ALICE)
    assert own["router:external"] is False
    # subnet-external-network: a project sees the external network's subnets (read only).
    listed = api.ok("GET", f"/v2.0/subnets?network_id={public['id']}", BOB)["subnets"]
    assert [s["id"] for s in listed] == [ext["id"]]
    assert [s["id"] for s in api.ok("GET", "/v2.0/subnets?router:external=true",
                                    ALICE)["subnets"]] == [ext["id"]]
    assert api.ok("GET", f"/v2.0/subnets/{ext['id']}", BOB)["subnet"]["router:external"]
    assert api.call("PUT", f"/v2.0/subnets/{ext['id']}", BOB,
                    json={"subnet": {"name": "x"}}).status_code in (403, 404)
    assert api.call("DELETE", f"/v2.0/subnets/{ext['id']}", BOB).status_code in (403, 404)


class RouteRunner:
    """Plays ``ip -n <ns> route`` over a table of (dst, via, proto) routes."""

    def __init__(self, routes: list[tuple[str, str, str]]) -> None:
        self.routes = list(routes)
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], check: bool = True, **_: object) -> str:
        import json

        from stratus.agent.runner import CommandError

        self.calls.append(list(argv))
        if argv[3:] == ["-j", "-4", "route", "show", "proto", "static"]:
            return json.dumps([{"dst": d.removesuffix("/32"), "gateway": g}
                               for d, g, p in self.routes if p == "static"])
        verb, dst, hop = argv[4], argv[5], argv[7]
        if verb == "del":
            self.routes.remove((dst, hop, "static"))
        elif hop.startswith("172."):
            raise CommandError(argv, 2, "Error: Nexthop has invalid gateway.")
        else:
            self.routes.append((dst, hop, "static"))
        return ""


def test_the_agent_installs_exactly_the_routers_extra_routes() -> None:
    from stratus.agent.network.drivers.router import ensure_extra_routes
    from stratus.contracts.network import HostRoute, Router

    runner = RouteRunner([("192.168.9.0/24", "10.0.0.9", "static"),  # stale: ours, removed
                          ("192.168.1.0/24", "10.0.0.10", "static"),  # kept as it is
                          ("10.0.0.0/24", "", "kernel")])  # not ours: untouched
    router = Router(id="r1", routes=[
        HostRoute("192.168.1.0/24", "10.0.0.10"), HostRoute("192.168.2.5/32", "10.0.0.11"),
        HostRoute("0.0.0.0/0", "10.0.0.1"),  # the gateway's: left alone
        HostRoute("192.168.3.0/24", "172.16.0.1")])  # refused by the kernel: logged
    ensure_extra_routes(runner, "ns", router)  # type: ignore[arg-type]
    assert sorted(runner.routes) == [("10.0.0.0/24", "", "kernel"),
                                     ("192.168.1.0/24", "10.0.0.10", "static"),
                                     ("192.168.2.5/32", "10.0.0.11", "static")]
    calls = len(runner.calls)
    router.routes = router.routes[:2]
    ensure_extra_routes(runner, "ns", router)  # type: ignore[arg-type]
    assert len(runner.calls) == calls + 1  # converged: only the read
