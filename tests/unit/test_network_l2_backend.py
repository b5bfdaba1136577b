"""The L2 backend a host's network agent registers (``HostRegistration.l2_backend``) and the
L2 agent the agents listing shows for it (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, NetApi, in_process
from stratus.contracts.network import HostRegistration, ModelError

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as client:
        yield client


def test_registration_round_trips_its_backend() -> None:
    for backend in ("ovs", "linuxbridge"):
        reg = HostRegistration(underlay_ip="10.0.0.5", network_node=True, l2_backend=backend)
        body = reg.to_body()
        assert body == {"host": {"underlay_ip": "10.0.0.5", "network_node": True,
                                 "l2_backend": backend}}
        assert HostRegistration.from_body(body) == reg


def test_registration_without_backend_is_unknown_and_not_sent() -> None:
    old = HostRegistration.from_body({"host": {"underlay_ip": "10.0.0.5"}})
    assert old.l2_backend is None
    assert "l2_backend" not in old.to_body()["host"]  # an older API refuses the key
    assert HostRegistration.from_body({"host": {"l2_backend": None}}).l2_backend is None


@pytest.mark.parametrize("bad", ["openvswitch", "", 3])
def test_registration_refuses_other_backends(bad: object) -> None:
    with pytest.raises(ModelError, match="l2_backend"):
        HostRegistration.from_body({"host": {"l2_backend": bad}})


def register(api: NetApi, host: str, node: bool, **extra: Any) -> dict[str, Any]:
    return dict(api.ok("PUT", f"/v2.0/stratus-agent/hosts/{host}", ADMIN, json={
        "host": {"underlay_ip": "10.0.0.5", "network_node": node, **extra}}))


def l2_agents(api: NetApi) -> dict[str, dict[str, Any]]:
    every = api.ok("GET", "/v2.0/agents", ADMIN)["agents"]
    return {a["host"]: a for a in every if a["agent_type"] not in (
        "DHCP agent", "L3 agent", "Metadata agent")}


def test_agents_listing_shows_each_hosts_backend(api: NetApi) -> None:
    assert register(api, "lb1", True, l2_backend="linuxbridge")["host"]["l2_backend"] == (
        "linuxbridge")
    register(api, "ovs1", False, l2_backend="ovs")
    register(api, "old1", False)  # an agent older than the field
    agents = l2_agents(api)
    assert {h: (a["agent_type"], a["binary"]) for h, a in agents.items()} == {
        "lb1": ("Linux bridge agent", "neutron-linuxbridge-agent"),
        "ovs1": ("Open vSwitch agent", "neutron-openvswitch-agent"),
        "old1": ("Open vSwitch agent", "neutron-openvswitch-agent")}
    assert agents["lb1"]["configurations"] == {
        "tunneling_ip": "10.0.0.5", "tunnel_types": ["vxlan"], "l2_population": True}
    assert agents["ovs1"]["configurations"] == {"tunneling_ip": "10.0.0.5",
                                                "l2_population": True}
    lb = agents["lb1"]
    assert api.ok("GET", f"/v2.0/agents/{lb['id']}", ADMIN)["agent"] == lb
    filtered = api.ok("GET", "/v2.0/agents?agent_type=Linux%20bridge%20agent", ADMIN)
    assert [a["host"] for a in filtered["agents"]] == ["lb1"]
    hosts = {h["host"]: h for h in api.ok("GET", "/v2.0/stratus-agent/hosts", ADMIN)["hosts"]}
    assert {h: hosts[h]["l2_backend"] for h in hosts} == {
        "lb1": "linuxbridge", "ovs1": "ovs", "old1": None}


def test_polling_registration_keeps_the_backend(api: NetApi) -> None:
    register(api, "lb1", False, l2_backend="linuxbridge")
    api.ok("GET", "/v2.0/stratus-agent/hosts/lb1?underlay_ip=10.0.0.6", ADMIN)
    assert l2_agents(api)["lb1"]["agent_type"] == "Linux bridge agent"
    register(api, "lb1", False)  # a registration that says nothing: unknown again
    assert l2_agents(api)["lb1"]["agent_type"] == "Open vSwitch agent"


@pytest.mark.parametrize("bad", ["openvswitch", 1, ["ovs"]])
def test_a_bad_backend_is_refused_with_what_is_allowed(api: NetApi, bad: object) -> None:
    resp = api.call("PUT", "/v2.0/stratus-agent/hosts/h1", ADMIN,
                    json={"host": {"l2_backend": bad}})
    assert resp.status_code == 400
    assert "ovs, linuxbridge" in resp.text
    assert l2_agents(api) == {}


@pytest.mark.parametrize("backend", ["ovs", "linuxbridge"])
def test_the_agent_registers_its_configured_backend(tmp_path: Path, backend: str) -> None:
    from stratus.agent.network.agent import build_agent
    from stratus.agent.network.sources import HttpSource
    from stratus.common.config import Config

    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nhost = nl2-h1\nl2_backend = {backend}\nunderlay_ip = 10.0.0.5\n"
                    f"state_dir = {tmp_path / 'state'}\n"
                    "network_state_url = http://127.0.0.1:9/v2.0/stratus-agent/hosts/{host}\n")
    agent, _, _ = build_agent(Config.load(str(conf)))
    source = agent.source
    assert isinstance(source, HttpSource)
    assert source.registration.to_body() == {"host": {
        "underlay_ip": "10.0.0.5", "network_node": False, "l2_backend": backend}}
