"""Admin server actions and the limits they touch (issue 12): the metadata_items limit at
create and rebuild read from the project's quota (its override, else the ``default``
quota class), os-resetState, injectNetworkInfo, addFloatingIp/removeFloatingIp and
os-instance_usage_audit_log, each answer checked against Tempest's own response schemas
and Nova's policy (admin-only where Nova's default is admin)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_compute_agent import SERVER_A, assignment, env  # noqa: F401 (the fixture)
from test_compute_microversions import active
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, BOB, IMAGE, ComputeApi, in_process
from network_api import CONTEXTS
from stratus.common.clients import ServiceError
from stratus.compute import models as m

pytestmark = pytest.mark.unit
QC = "/v2.1/os-quota-class-sets/default"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def action(api: ComputeApi, sid: str, body: dict[str, Any], token: str = ADMIN,
           version: str = "2.1") -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)


def meta(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


def test_metadata_limit_at_create_and_rebuild_is_the_quota_class_s(api: ComputeApi) -> None:
    api.ok("PUT", QC, json={"quota_class_set": {"metadata_items": 2}})
    body = {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}
    over = api.call("POST", "/v2.1/servers", ALICE, json={"server": {**body,
                                                                      "metadata": meta(3)}})
    assert over.status_code == 403 and "at most 2 items" in over.text, over.text
    sid = active(api, metadata=meta(2))
    rebuild = action(api, sid, {"rebuild": {"imageRef": IMAGE, "metadata": meta(3)}}, ALICE)
    assert rebuild.status_code == 403 and "metadata_items" in rebuild.text
    # a project's own override wins over the class
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {"metadata_items": 3}})
    assert action(api, sid, {"rebuild": {"imageRef": IMAGE, "metadata": meta(3)}},
                  ALICE).status_code == 202
    # the class raised: more than the configured default (128) is allowed
    api.ok("PUT", QC, json={"quota_class_set": {"metadata_items": 200}})
    assert api.call("POST", "/v2.1/servers", BOB, json={"server": {
        **body, "metadata": meta(150)}}).status_code == 202


def generation(api: ComputeApi, host: str = "cmp1") -> int:
    with api.core.db.session() as s:
        row = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == host)).one()
        return int(row.generation)


def actions_of(api: ComputeApi, sid: str) -> list[dict[str, Any]]:
    resp = api.call("GET", f"/v2.1/servers/{sid}/os-instance-actions", ADMIN, version="2.51")
    return list(check(resp, "servers", "list_instance_actions", "2.51")["instanceActions"])


def test_reset_state_is_admin_clears_the_task_and_is_recorded(api: ComputeApi) -> None:
    sid = active(api)
    assert action(api, sid, {"os-stop": None}, ALICE).status_code == 202
    assert api.server(sid)["OS-EXT-STS:task_state"] == "powering-off"
    # owner: 403 (Nova's default policy is admin); unknown server 404; bad state 400
    assert action(api, sid, {"os-resetState": {"state": "error"}}, ALICE).status_code == 403
    assert action(api, "f" * 8 + "-0000-4000-8000-" + "0" * 12,
                  {"os-resetState": {"state": "error"}}).status_code == 404
    for bad in ({"state": "stopped"}, {}, {"state": "active", "x": 1}, None, "error"):
        resp = action(api, sid, {"os-resetState": bad})
        assert resp.status_code == 400, (bad, resp.text)
        assert '"active" or "error"' in resp.json()["badRequest"]["message"]
    before = generation(api)
    resp = action(api, sid, {"os-resetState": {"state": "error"}})
    check(resp, "servers", "server_actions_common_schema", "2.1")
    assert not resp.content
    shown = api.server(sid)
    assert (shown["status"], shown["OS-EXT-STS:vm_state"],
            shown["OS-EXT-STS:task_state"]) == ("ERROR", "error", None)
    assert generation(api) > before  # the agent is woken
    errored = api.ok("GET", "/v2.1/servers?status=error", ALICE)["servers"]
    assert [s["id"] for s in errored] == [sid]  # Tempest lists by status after a reset
    listed = actions_of(api, sid)
    assert [a["action"] for a in listed[:2]] == ["resetState", "stop"]
    # the stop's open event ended (Error): nothing waits for a task that is gone
    stop_rid = listed[1]["request_id"]
    stop = api.call("GET", f"/v2.1/servers/{sid}/os-instance-actions/{stop_rid}", ADMIN,
                    version="2.51")
    [event] = check(stop, "servers", "show_instance_action", "2.51")["instanceAction"]["events"]
    assert event["result"] == "Error" and event["finish_time"]
    reset_rid = listed[0]["request_id"]
    reset = api.call("GET", f"/v2.1/servers/{sid}/os-instance-actions/{reset_rid}", ADMIN,
                     version="2.51")
    assert check(reset, "servers", "show_instance_action",
                 "2.51")["instanceAction"]["events"] == []
    # back to active: ACTIVE with no task; the agent's report then says what is real
    assert action(api, sid, {"os-resetState": {"state": "active"}}).status_code == 202
    assert api.server(sid)["status"] == "ACTIVE"
    api.report("cmp1", sid, vm_state="stopped", power_state=4)
    assert api.server(sid)["status"] == "SHUTOFF"
    # an owner may rebuild a server an admin put in ERROR (Tempest's
    # test_rebuild_server_in_error_state)
    assert action(api, sid, {"os-resetState": {"state": "error"}}).status_code == 202
    assert action(api, sid, {"rebuild": {"imageRef": IMAGE}}, ALICE).status_code == 202
    assert api.server(sid)["OS-EXT-STS:task_state"] == "rebuilding"


def test_inject_network_info_refreshes_the_ports_and_wakes_the_agent(api: ComputeApi) -> None:
    net = api.fake.network("app-net")
    sid = active(api, networks=[{"uuid": net["id"]}])
    [port_id] = [p for p, v in api.fake.ports.items() if v["device_id"] == sid]
    old_ip = api.fake.ports[port_id]["fixed_ips"][0]["ip_address"]
    # the network API changed the port and the network behind the compute API's back
    api.fake.ports[port_id]["fixed_ips"] = [{"subnet_id": net["subnets"][0],
                                             "ip_address": "192.168.10.200"}]
    api.fake.networks[net["id"]]["mtu"] = 1400
    assert [a["addr"] for a in api.server(sid)["addresses"]["app-net"]] == [old_ip]
    assert action(api, sid, {"injectNetworkInfo": None}, ALICE).status_code == 403
    assert action(api, sid, {"injectNetworkInfo": {"x": 1}}).status_code == 400
    before = generation(api)
    resp = action(api, sid, {"injectNetworkInfo": None})
    check(resp, "servers", "server_actions_common_schema", "2.1")
    assert not resp.content
    assert [a["addr"] for a in api.server(sid)["addresses"]["app-net"]] == ["192.168.10.200"]
    assert generation(api) > before
    with api.core.db.session() as s:
        row = s.get(m.ServerPort, port_id)
        assert row is not None and row.mtu == 1400
        found = s.scalars(sa.select(m.ServerAddress.ip_address).where(
            m.ServerAddress.server_id == sid)).all()
        assert found == ["192.168.10.200"]
    [inject, *_] = actions_of(api, sid)
    assert inject["action"] == "injectNetworkInfo"
    path = f"/v2.1/servers/{sid}/os-instance-actions/{inject['request_id']}"
    [event] = api.ok("GET", path, version="2.51")["instanceAction"]["events"]
    assert event["event"] == "compute_inject_network_info" and event["result"] is None
    api.report("cmp1", sid, vm_state="active", power_state=1)  # the agent's next report
    [event] = api.ok("GET", path, version="2.51")["instanceAction"]["events"]
    assert event["result"] == "Success"
    # Tempest's body ({} as kwargs) is taken too
    assert action(api, sid, {"injectNetworkInfo": {}}).status_code == 202


AUDIT = "/v2.1/os-instance_usage_audit_log"


def test_usage_audit_log_says_no_host_ran_the_audit(api: ComputeApi) -> None:
    api.host("cmp2")
    listed = api.call("GET", AUDIT, ADMIN)
    log = check(listed, "instance_usage_audit_logs", "list_instance_usage_audit_log",
                "2.1")["instance_usage_audit_logs"]
    now = datetime.now(UTC)
    assert log["period_ending"] == f"{now.year:04d}-{now.month:02d}-01 00:00:00"
    assert (log["num_hosts"], log["num_hosts_not_run"], log["num_hosts_done"]) == (2, 2, 0)
    assert log["hosts_not_run"] == ["cmp1", "cmp2"] and log["log"] == {}
    assert log["overall_status"] == "0 of 2 hosts done. 0 errors."
    # before a time (Tempest's form, URL-quoted): the period completed before it
    shown = api.call("GET", AUDIT + "/2026-01-15%2010:20:30", ADMIN)
    log = check(shown, "instance_usage_audit_logs", "get_instance_usage_audit_log",
                "2.1")["instance_usage_audit_log"]
    assert (log["period_beginning"], log["period_ending"]) == (
        "2025-12-01 00:00:00", "2026-01-01 00:00:00")
    quoted = api.ok("GET", AUDIT + "/2026-01-15%2010%3A20%3A30")  # urllib.quote's form
    assert quoted["instance_usage_audit_log"] == log
    micro = api.ok("GET", AUDIT + "/2026-03-01 00:00:00.5")["instance_usage_audit_log"]
    assert micro["period_beginning"] == "2026-02-01 00:00:00"
    bad = api.call("GET", AUDIT + "/invalid_time", ADMIN)
    assert bad.status_code == 400 and "YYYY-MM-DD hh:mm:ss" in bad.text
    # admin only (Nova's default policy)
    assert api.call("GET", AUDIT, ALICE).status_code == 403
    assert api.call("GET", AUDIT + "/2026-01-15 10:20:30", ALICE).status_code == 403


class FakeFloatingIps:
    """The network API's floating IPs, as the caller sees them (next to FakeDownstream's
    ports; an association shows in the server's addresses through ``fake.floating``)."""

    def __init__(self, api: ComputeApi) -> None:
        self.fake = api.fake
        self.fips: dict[str, dict[str, Any]] = {}
        self.refuse: ServiceError | None = None
        self.fake.list_floatingips = self.list_floatingips
        self.fake.update_floatingip = self.update_floatingip

    def add(self, address: str, project: str = "p-alice") -> dict[str, Any]:
        fid = f"fip-{len(self.fips)}"
        self.fips[fid] = {"id": fid, "floating_ip_address": address, "port_id": None,
                          "fixed_ip_address": None, "project_id": project}
        return self.fips[fid]

    def list_floatingips(self, token: str, **filters: Any) -> list[dict[str, Any]]:
        ctx = CONTEXTS[token]
        return [dict(f) for f in self.fips.values()
                if (ctx.is_admin or f["project_id"] == ctx.project_id)
                and all(f.get(k) == v for k, v in filters.items())]

    def update_floatingip(self, token: str, fip_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        fip = self.fips[fip_id]
        if fip["port_id"]:
            self.fake.floating.pop(fip["port_id"], None)
        fip.update(port_id=body["port_id"], fixed_ip_address=body.get("fixed_ip_address"))
        if fip["port_id"]:
            self.fake.floating[fip["port_id"]] = fip["floating_ip_address"]
        return dict(fip)


def floating_of(api: ComputeApi, sid: str) -> list[str]:
    return [a["addr"] for net in api.server(sid)["addresses"].values() for a in net
            if a["OS-EXT-IPS:type"] == "floating"]


def test_add_and_remove_floating_ip_below_2_44(api: ComputeApi) -> None:
    fips = FakeFloatingIps(api)
    net = api.fake.network("app-net")
    sid = active(api, networks=[{"uuid": net["id"]}])
    other = active(api, networks=[{"uuid": net["id"]}])
    [port_id] = [p for p, v in api.fake.ports.items() if v["device_id"] == sid]
    fixed = api.fake.ports[port_id]["fixed_ips"][0]["ip_address"]
    fip = fips.add("172.24.4.10")
    fips.add("172.24.4.99", project="p-bob")
    add = {"addFloatingIp": {"address": "172.24.4.10"}}
    # bad input 400 (not an address, unknown keys, a fixed address not the server's)
    for bad in ({"address": "not-an-ip"}, {}, {"address": "172.24.4.10", "x": 1},
                {"address": "172.24.4.10", "fixed_address": "10.0.0.99"}, None):
        assert action(api, sid, {"addFloatingIp": bad}, ALICE).status_code == 400, bad
    # no such floating IP for the caller 404 (another project's too); someone else's
    # server 404; gone from 2.44
    for address in ("172.24.4.11", "172.24.4.99"):
        resp = action(api, sid, {"addFloatingIp": {"address": address}}, ALICE)
        assert resp.status_code == 404 and "floating IP not found" in resp.text
    assert action(api, sid, add, BOB).status_code == 404
    assert action(api, sid, add, ALICE, version="2.44").status_code == 404
    assert fip["port_id"] is None
    resp = action(api, sid, {"addFloatingIp": {"address": "172.24.4.10",
                                               "fixed_address": fixed}}, ALICE)
    check(resp, "floating_ips", "add_remove_floating_ip", "2.1")
    assert not resp.content
    assert (fip["port_id"], fip["fixed_ip_address"]) == (port_id, fixed)
    assert floating_of(api, sid) == ["172.24.4.10"]
    # removing it from a server it is not on: 409; from its own: 202, then 409
    remove = {"removeFloatingIp": {"address": "172.24.4.10"}}
    assert action(api, other, remove, ALICE).status_code == 409
    assert action(api, sid, {"removeFloatingIp": {"address": "x"}}, ALICE).status_code == 400
    assert action(api, sid, remove, ALICE, version="2.44").status_code == 404
    assert action(api, sid, remove, ALICE).status_code == 202
    assert fip["port_id"] is None and floating_of(api, sid) == []
    assert action(api, sid, remove, ALICE).status_code == 409
    # the network API's refusal is a 400, its outage a 503, never a 500
    fips.refuse = ServiceError("port has no such fixed IP", status=400)
    assert action(api, sid, add, ALICE).status_code == 400
    fips.refuse = ServiceError("unreachable", temporary=True)
    assert action(api, sid, add, ALICE).status_code == 503
    fips.refuse = None
    # without a fixed address: the server's first fixed IPv4; a server without one: 400
    assert action(api, sid, add, ALICE).status_code == 202 and fip["port_id"] == port_id
    bare = active(api)
    resp = action(api, bare, add, ALICE)
    assert resp.status_code == 400 and "no fixed IPv4" in resp.text


def test_restore_is_a_conflict_and_force_delete_deletes(api: ComputeApi) -> None:
    sid = active(api)
    missing = "f" * 8 + "-0000-4000-8000-" + "0" * 12
    for name in ("restore", "forceDelete"):
        assert action(api, missing, {name: None}, ALICE).status_code == 404
        assert action(api, sid, {name: None}, BOB).status_code == 404
        assert action(api, sid, {name: {"x": 1}}, ALICE).status_code == 400
    resp = action(api, sid, {"restore": None}, ALICE)
    assert resp.status_code == 409 and "vm_state active" in resp.text
    resp = action(api, sid, {"forceDelete": None}, ALICE)
    check(resp, "servers", "server_actions_common_schema", "2.1")
    assert not resp.content
    assert api.server(sid)["OS-EXT-STS:task_state"] == "deleting"
    api.report("cmp1", sid, deleted=True)
    assert api.call("GET", f"/v2.1/servers/{sid}", ALICE).status_code == 404


def test_inject_network_info_asks_the_agent_to_replug(api: ComputeApi) -> None:
    net = api.fake.network("app-net")
    sid = active(api, networks=[{"uuid": net["id"]}])
    served = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")
    [doc] = [s for s in served["servers"] if s["id"] == sid]
    assert "network" not in doc  # none asked yet
    assert action(api, sid, {"injectNetworkInfo": None}).status_code == 202
    assert action(api, sid, {"injectNetworkInfo": None}).status_code == 202
    served = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")
    [doc] = [s for s in served["servers"] if s["id"] == sid]
    assert doc["network"] == 2


def test_agent_replugs_the_ports_once_per_network_generation(
        env: Any) -> None:  # noqa: F811 (the fixture)
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    [device] = [p.device for p in env.driver.domains[SERVER_A].spec.ports]
    assert env.driver.taps[device] == 1450
    # the tap is lost and the network's MTU changed: an ordinary pass changes nothing
    # (the set of ports is the same)
    del env.driver.taps[device]
    ports = [{**p, "mtu": 1400} for p in assignment()["ports"]]
    env.api.servers[SERVER_A] = assignment(vm_state="active", task_state=None, ports=ports)
    assert env.agent.reconcile_once().ok
    assert device not in env.driver.taps
    # injectNetworkInfo's generation: every port plugged again, with its MTU
    env.api.servers[SERVER_A] = assignment(vm_state="active", task_state=None, ports=ports,
                                           network=1)
    assert env.agent.reconcile_once().ok
    assert env.driver.taps[device] == 1400
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # applied: not again
    assert "plug_vifs" not in [name for name, _ in env.driver.calls[calls:]]
    # a new agent process applies it once more (in memory only), changing nothing
    agent = env.make()
    try:
        assert agent.reconcile_once().ok
    finally:
        agent.pool.shutdown(wait=True)
    assert env.driver.taps[device] == 1400
