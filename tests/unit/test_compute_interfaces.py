"""Interfaces: the compute API's os-interface attach and detach (a port made on a
network, with a fixed IP, or the user's own port; 2.49 tags shown from 2.70; Nova's
refusals; the port's device and binding set and cleared in the network API, as Tempest's
schemas want the answers) and the compute agent hot-plugging and unplugging the tap with
the fake driver, also after a kill half-way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_agent import SERVER_A, assignment, env  # noqa: F401 (the fixture)
from test_compute_schemas import check

from compute_api import ALICE, ComputeApi, in_process
from stratus.contracts.compute import Assignment

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def active(api: ComputeApi, net: dict[str, Any]) -> str:
    sid = str(api.boot(networks=[{"uuid": net["id"]}])["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def url(sid: str, port: str = "") -> str:
    return f"/v2.1/servers/{sid}/os-interface" + (f"/{port}" if port else "")


def attach(api: ComputeApi, sid: str, body: dict[str, Any], version: str = "2.70") -> Any:
    return api.call("POST", url(sid), ALICE, version=version,
                    json={"interfaceAttachment": body})


def agent_ports(api: ComputeApi, sid: str) -> list[str]:
    servers = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    return [p["id"] for p in next(s for s in servers if s["id"] == sid)["ports"]]


def test_attach_on_a_network_then_detach(api: ComputeApi) -> None:
    net = api.fake.network("net1")
    other = api.fake.network("net2")
    sid = active(api, net)
    resp = attach(api, sid, {"net_id": other["id"], "fixed_ips": [
        {"ip_address": "192.168.10.77"}], "tag": "data"})
    got = check(resp, "interfaces", "get_create_interfaces", "2.70")["interfaceAttachment"]
    assert got["net_id"] == other["id"] and got["tag"] == "data"
    assert got["fixed_ips"][0]["ip_address"] == "192.168.10.77"
    port = api.fake.ports[got["port_id"]]
    assert port["device_id"] == sid and port["device_owner"].startswith("compute:")
    assert port["binding:host_id"] == "cmp1"
    assert got["port_id"] in agent_ports(api, sid)
    listed = check(api.call("GET", url(sid), ALICE, version="2.70"), "interfaces",
                   "list_interfaces", "2.70")["interfaceAttachments"]
    assert len(listed) == 2
    shown = check(api.call("GET", url(sid, got["port_id"]), ALICE, version="2.70"),
                  "interfaces", "get_create_interfaces", "2.70")["interfaceAttachment"]
    assert shown == got
    server = api.server(sid)
    assert "192.168.10.77" in str(server["addresses"]["net2"])
    resp = api.call("DELETE", url(sid, got["port_id"]), ALICE)
    check(resp, "interfaces", "delete_interface", "2.70")
    assert got["port_id"] not in api.fake.ports  # made for the server: deleted
    assert got["port_id"] not in agent_ports(api, sid)
    assert "net2" not in api.server(sid)["addresses"]
    assert api.call("DELETE", url(sid, got["port_id"]), ALICE).status_code == 404


def test_attach_the_users_port_frees_it_on_detach(api: ComputeApi) -> None:
    net = api.fake.network("net1")
    sid = active(api, net)
    free = api.fake.create_port(ALICE, {"network_id": net["id"]})
    resp = attach(api, sid, {"port_id": free["id"]}, version="2.1")
    got = check(resp, "interfaces", "get_create_interfaces", "2.1")["interfaceAttachment"]
    assert got["port_id"] == free["id"] and "tag" not in got
    assert api.fake.ports[free["id"]]["device_id"] == sid
    # a port in use is refused, as Nova does
    other = active(api, net)
    assert attach(api, other, {"port_id": free["id"]}).status_code == 409
    assert api.call("DELETE", url(sid, free["id"]), ALICE).status_code == 202
    port = api.fake.ports[free["id"]]  # the user's: kept, freed
    assert port["device_id"] == "" and port["binding:host_id"] == ""


def test_attach_without_a_network_takes_the_only_one(api: ComputeApi) -> None:
    net = api.fake.network("net1")
    sid = active(api, net)
    got = attach(api, sid, {}).json()["interfaceAttachment"]
    assert got["net_id"] == net["id"]
    api.fake.network("net2")
    resp = attach(api, sid, {})
    assert resp.status_code == 400 and "Multiple possible networks" in resp.text


@pytest.mark.parametrize(("body", "version", "status", "word"), [
    ({"net_id": "N", "port_id": "P"}, "2.70", 400, "both"),
    ({"fixed_ips": [{"ip_address": "192.168.10.5"}]}, "2.70", 400, "network_id"),
    ({"net_id": "N", "tag": "x"}, "2.48", 400, "tag"),
    ({"net_id": "N", "tag": "a/b"}, "2.70", 400, "tag"),
    ({"net_id": "not-a-uuid"}, "2.70", 400, "net_id"),
    ({"net_id": "N", "extra": 1}, "2.70", 400, "extra"),
    ({"net_id": "00000000-0000-4000-8000-000000000000"}, "2.70", 404, "could not be found"),
    ({"port_id": "00000000-0000-4000-8000-000000000000"}, "2.70", 404, "could not be found"),
])
def test_attach_refusals(api: ComputeApi, body: dict[str, Any], version: str, status: int,
                         word: str) -> None:
    net = api.fake.network("net1")
    sid = active(api, net)
    ports = dict(api.fake.ports)
    body = {k: (net["id"] if v == "N" else next(iter(ports)) if v == "P" else v)
            for k, v in body.items()}
    resp = attach(api, sid, body, version)
    assert resp.status_code == status and word in resp.text, resp.text
    assert api.fake.ports.keys() == ports.keys()  # nothing made
    assert len(agent_ports(api, sid)) == 1


def test_attach_to_a_busy_server_is_refused(api: ComputeApi) -> None:
    net = api.fake.network("net1")
    sid = active(api, net)
    assert api.call("POST", f"/v2.1/servers/{sid}/action", ALICE,
                    json={"os-stop": None}).status_code == 202
    resp = attach(api, sid, {"net_id": net["id"]})
    assert resp.status_code == 409 and "task_state" in resp.text


# --- the agent ----------------------------------------------------------------------------

SECOND = {"id": "a0019f1c2d3e-port-0002", "network_id": "n2",
          "mac_address": "fa:16:3e:00:00:0c", "mtu": 1450,
          "fixed_ips": [{"subnet_id": "s2", "ip_address": "192.168.20.11"}]}


def test_agent_plugs_and_unplugs_interfaces(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    first = assignment()["ports"]
    env.api.servers[SERVER_A] = assignment(vm_state="active", task_state=None,
                                           ports=[*first, SECOND])
    assert env.agent.reconcile_once().ok
    dom = env.driver.domains[SERVER_A]
    devices = [p.device for p in dom.spec.ports]
    assert len(devices) == 2 and all(d in env.driver.taps for d in devices)
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # done: nothing plugged again
    assert "attach_interface" not in [m for m, _ in env.driver.calls[calls:]]
    env.api.servers[SERVER_A] = assignment(vm_state="active", task_state=None,
                                           ports=[SECOND])
    assert env.agent.reconcile_once().ok
    assert [p.id for p in dom.spec.ports] == [SECOND["id"]]
    assert devices[0] not in env.driver.taps and devices[1] in env.driver.taps
    assert env.agent.store.load(SERVER_A).devices == [devices[1]]


def test_agent_killed_mid_plug_plugs_on_restart(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    env.api.servers[SERVER_A] = assignment(vm_state="active", task_state=None,
                                           ports=[*assignment()["ports"], SECOND])
    env.driver.fail["attach_interface"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        env.agent.converge(Assignment.from_dict(env.api.servers[SERVER_A]))
    del env.driver.fail["attach_interface"]
    assert len(env.driver.domains[SERVER_A].spec.ports) == 1
    agent = env.make()  # a new agent process
    try:
        assert agent.reconcile_once().ok
    finally:
        agent.pool.shutdown(wait=True)
    assert len(env.driver.domains[SERVER_A].spec.ports) == 2
