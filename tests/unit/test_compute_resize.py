"""Resize: the compute API's actions (resize, confirmResize, revertResize: bodies,
refusals, the quota and host claim moved by the difference, the task and state each
records, the report that ends it, os-migrations as Tempest's schemas want it) and the
compute agent's level-triggered resize with the fake driver (disk kept and grown, the
domain redefined with the new flavor, a revert putting the old disk back, a confirm
dropping it, an agent killed half-way that finishes on restart)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_compute_agent import SERVER_A, assignment, env  # noqa: F401 (the fixture)
from test_compute_schemas import check

from compute_api import ALICE, ComputeApi, in_process
from stratus.agent.compute.virt.base import RUNNING, SHUTDOWN
from stratus.compute import models as m
from stratus.contracts.compute import Assignment

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")                                       # 1 vcpu, 512 MB, 1 GB
        client.flavor(name="m1.small", id="2", vcpus=2, ram=1024, disk=2)
        client.flavor(name="m1.nodisk", id="3", vcpus=1, ram=1024, disk=0)
        client.host("cmp1")
        yield client


def active(api: ComputeApi) -> str:
    sid = str(api.boot()["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def action(api: ComputeApi, sid: str, body: dict[str, Any], version: str = "2.47",
           token: str = ALICE) -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version, json=body)


def agent_view(api: ComputeApi, sid: str) -> dict[str, Any]:
    servers = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    found: dict[str, Any] = next(s for s in servers if s["id"] == sid)
    return found


def usage(api: ComputeApi) -> dict[str, Any]:
    q = api.ok("GET", "/v2.1/os-quota-sets/p-alice/detail")["quota_set"]
    return {k: q[k]["in_use"] for k in ("cores", "ram", "instances")}


def claimed(api: ComputeApi) -> tuple[int, int, int]:
    """The host's claims (what the scheduler counts; the hypervisor view shows what the
    agent reports instead)."""
    with api.core.db.session() as s:
        h = s.scalars(sa.select(m.ComputeHost).where(m.ComputeHost.host == "cmp1")).one()
        return h.claimed_vcpus, h.claimed_ram, h.claimed_disk


def migrations(api: ComputeApi, version: str = "2.80") -> list[dict[str, Any]]:
    resp = api.call("GET", "/v2.1/os-migrations", version=version)
    found: list[dict[str, Any]] = check(resp, "migrations", "list_migrations",
                                        version)["migrations"]
    return found


def test_resize_then_confirm(api: ComputeApi) -> None:
    sid = active(api)
    before = usage(api)
    resp = action(api, sid, {"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "AUTO"}})
    check(resp, "servers", "server_actions_common_schema", "2.47")
    shown = api.server(sid)
    assert shown["status"] == "RESIZE" and shown["OS-EXT-STS:task_state"] == "resize_prep"
    assert shown["flavor"]["original_name"] == "m1.small" and shown["flavor"]["vcpus"] == 2
    assert usage(api) == {**before, "cores": before["cores"] + 1,
                          "ram": before["ram"] + 512}
    doc = agent_view(api, sid)
    assert doc["resize"] == {"generation": 1, "revert": False, "pending": True}
    assert doc["flavor"]["id"] == "2" and doc["flavor"]["ram"] == 1024
    # a second resize, or a confirm, while it runs: 409 as in Nova
    assert action(api, sid, {"resize": {"flavorRef": "1"}}).status_code == 409
    assert action(api, sid, {"confirmResize": None}).status_code == 409
    api.report("cmp1", sid, vm_state="active", power_state=1)  # an older pass: still busy
    assert api.server(sid)["status"] == "RESIZE"
    api.report("cmp1", sid, vm_state="active", power_state=1, resize_generation=1)
    assert api.server(sid)["status"] == "VERIFY_RESIZE"
    api.report("cmp1", sid, vm_state="active", power_state=1)  # a later pass
    shown = api.server(sid)
    assert shown["status"] == "VERIFY_RESIZE" and shown["OS-EXT-STS:vm_state"] == "resized"
    for version in ("2.1", "2.23", "2.59", "2.80"):
        assert [m["status"] for m in migrations(api, version)] == ["finished"]
    mig = migrations(api)[0]
    assert mig["instance_uuid"] == sid and mig["migration_type"] == "resize"
    assert (mig["old_instance_type_id"], mig["new_instance_type_id"]) == (1, 2)
    assert mig["source_compute"] == mig["dest_compute"] == "cmp1"
    resp = action(api, sid, {"confirmResize": None})
    check(resp, "servers", "server_actions_confirm_resize", "2.47")
    shown = api.server(sid)
    assert shown["status"] == "ACTIVE" and shown["flavor"]["original_name"] == "m1.small"
    assert agent_view(api, sid)["resize"]["pending"] is False
    assert migrations(api)[0]["status"] == "confirmed"
    api.report("cmp1", sid, vm_state="active", power_state=1)
    assert api.server(sid)["status"] == "ACTIVE"
    assert action(api, sid, {"revertResize": None}).status_code == 409  # nothing to revert


def test_resize_then_revert_gives_back_the_old_flavor_and_usage(api: ComputeApi) -> None:
    sid = active(api)
    before, host_before = usage(api), claimed(api)
    assert action(api, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    assert claimed(api) == (host_before[0] + 1, host_before[1] + 512, host_before[2] + 1)
    api.report("cmp1", sid, vm_state="active", power_state=1, resize_generation=1)
    assert action(api, sid, {"revertResize": None}).status_code == 202
    shown = api.server(sid)
    assert shown["status"] == "REVERT_RESIZE"
    assert shown["flavor"]["original_name"] == "m1.tiny"
    assert agent_view(api, sid)["resize"] == {"generation": 2, "revert": True,
                                              "pending": False}
    assert usage(api) == before and claimed(api) == host_before
    assert migrations(api)[0]["status"] == "reverting"
    api.report("cmp1", sid, vm_state="active", power_state=1, resize_generation=2)
    shown = api.server(sid)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    assert migrations(api)[0]["status"] == "reverted"


def test_resize_of_a_stopped_server_stays_stopped_after_confirm(api: ComputeApi) -> None:
    sid = active(api)
    assert action(api, sid, {"os-stop": None}).status_code == 202
    api.report("cmp1", sid, vm_state="stopped", power_state=4, task_state=None)
    assert action(api, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    assert api.server(sid)["status"] == "RESIZE"
    api.report("cmp1", sid, vm_state="stopped", power_state=4, resize_generation=1)
    assert api.server(sid)["status"] == "VERIFY_RESIZE"
    assert action(api, sid, {"confirmResize": None}).status_code == 204
    assert api.server(sid)["status"] == "SHUTOFF"


def test_a_failed_resize_is_an_error(api: ComputeApi) -> None:
    sid = active(api)
    assert action(api, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    api.report("cmp1", sid, vm_state="error", power_state=0, resize_generation=1,
               fault={"code": 500, "message": "qemu-img resize: boom", "details": ""})
    shown = api.server(sid, ALICE)
    assert shown["status"] == "ERROR" and "boom" in shown["fault"]["message"]
    assert migrations(api)[0]["status"] == "error"


@pytest.mark.parametrize(("body", "status", "word"), [
    ({"resize": {"flavorRef": "1"}}, 400, "same flavor"),
    ({"resize": {"flavorRef": "3"}}, 400, "zero disk"),
    ({"resize": {"flavorRef": "99"}}, 400, "Unable to locate requested flavor"),
    ({"resize": {}}, 400, "flavorRef"),
    ({"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "SOMETIMES"}}, 400, "diskConfig"),
    ({"resize": {"flavorRef": "2", "extra": 1}}, 400, "extra"),
    ({"resize": "2"}, 400, "flavorRef"),
    ({"confirmResize": None}, 409, "vm_state active"),
    ({"revertResize": None}, 409, "vm_state active"),
    ({"confirmResize": {"x": 1}}, 400, "null is expected"),
])
def test_resize_refusals(api: ComputeApi, body: dict[str, Any], status: int,
                         word: str) -> None:
    sid = active(api)
    before = usage(api)
    resp = action(api, sid, body)
    assert resp.status_code == status and word in resp.text, resp.text
    assert agent_view(api, sid).get("resize") is None  # nothing recorded
    assert usage(api) == before and migrations(api) == []


def test_resize_to_a_smaller_disk_is_refused(api: ComputeApi) -> None:
    sid = active(api)
    assert action(api, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    api.report("cmp1", sid, vm_state="active", power_state=1, resize_generation=1)
    assert action(api, sid, {"confirmResize": None}).status_code == 204
    resp = action(api, sid, {"resize": {"flavorRef": "1"}})
    assert resp.status_code == 400 and "resize disk down" in resp.text


def test_resize_counts_the_difference_against_the_quota(api: ComputeApi) -> None:
    sid = active(api)
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {"cores": 1}})
    resp = action(api, sid, {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 403 and "cores" in resp.text, resp.text
    assert api.server(sid)["status"] == "ACTIVE"


def test_resize_beyond_the_host_is_refused(api: ComputeApi) -> None:
    api.flavor(name="m1.huge", id="4", vcpus=1, ram=512, disk=1000)
    sid = active(api)
    resp = action(api, sid, {"resize": {"flavorRef": "4"}})
    assert resp.status_code == 400 and "No valid host" in resp.text, resp.text


def test_os_migrations_is_for_admins(api: ComputeApi) -> None:
    assert api.call("GET", "/v2.1/os-migrations", ALICE).status_code == 403


# --- the agent ----------------------------------------------------------------------------


SMALL = {"id": "2", "name": "m1.small", "vcpus": 2, "ram": 1024, "disk": 3, "swap": 0,
         "ephemeral": 0, "extra_specs": {}}
TINY = assignment()["flavor"]


def resized(generation: int = 1, revert: bool = False, pending: bool = True,
            **kw: Any) -> dict[str, Any]:
    flavor = TINY if revert else SMALL
    doc = {"vm_state": "active", "task_state": "resize_prep", "flavor": flavor,
           "resize": {"generation": generation, "revert": revert, "pending": pending}}
    doc.update(kw)
    return assignment(**doc)


def spawned(env: Any) -> None:  # noqa: F811
    env.api.servers[SERVER_A] = assignment()
    assert env.agent.reconcile_once().ok
    env.driver.disks[SERVER_A] = "what the guest wrote"


def test_agent_resizes_keeps_the_old_disk_and_confirm_drops_it(env: Any) -> None:  # noqa: F811
    spawned(env)
    taps = dict(env.driver.taps)
    env.api.servers[SERVER_A] = resized()
    assert env.agent.reconcile_once().ok
    last = env.api.last(SERVER_A)
    assert last["resize_generation"] == 1 and last["vm_state"] == "active"
    dom = env.driver.domains[SERVER_A]
    assert dom.state == RUNNING and dom.boots == 2  # stopped, redefined, started
    assert (dom.spec.memory_mb, dom.spec.vcpus) == (1024, 2)
    assert env.driver.disk_sizes[SERVER_A] == 3 and env.driver.taps == taps
    assert env.driver.disks[SERVER_A] == "what the guest wrote"  # grown, not replaced
    assert env.driver.has_disk_copy(SERVER_A)
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # done: nothing again, the copy kept
    assert not {"define", "grow_disk"} & {m for m, _ in env.driver.calls[calls:]}
    assert env.driver.has_disk_copy(SERVER_A)
    env.api.servers[SERVER_A] = resized(pending=False, task_state=None)  # confirmed
    assert env.agent.reconcile_once().ok
    assert not env.driver.has_disk_copy(SERVER_A)
    assert env.driver.domains[SERVER_A].state == RUNNING


def test_agent_revert_puts_the_old_disk_and_flavor_back(env: Any) -> None:  # noqa: F811
    spawned(env)
    env.api.servers[SERVER_A] = resized()
    assert env.agent.reconcile_once().ok
    env.driver.disks[SERVER_A] = "written after the resize"
    env.api.servers[SERVER_A] = resized(2, revert=True, pending=False,
                                        task_state="resize_reverting")
    assert env.agent.reconcile_once().ok
    assert env.api.last(SERVER_A)["resize_generation"] == 2
    dom = env.driver.domains[SERVER_A]
    assert (dom.spec.memory_mb, dom.spec.vcpus) == (256, 1) and dom.state == RUNNING
    assert env.driver.disks[SERVER_A] == "what the guest wrote"
    assert not env.driver.has_disk_copy(SERVER_A)


def test_agent_killed_mid_resize_finishes_on_restart(env: Any) -> None:  # noqa: F811
    spawned(env)
    env.api.servers[SERVER_A] = resized()
    env.driver.fail["grow_disk"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        env.agent.converge(Assignment.from_dict(env.api.servers[SERVER_A]))
    assert env.driver.domains[SERVER_A].state == SHUTDOWN
    assert env.agent.store.load(SERVER_A).resize_generation == 0
    env.driver.disks[SERVER_A] = "touched after the copy"  # the copy is the original
    del env.driver.fail["grow_disk"]
    agent = env.make()  # a new agent process
    try:
        assert agent.reconcile_once().ok
    finally:
        agent.pool.shutdown(wait=True)
    dom = env.driver.domains[SERVER_A]
    assert dom.state == RUNNING and dom.spec.memory_mb == 1024
    assert env.api.last(SERVER_A)["resize_generation"] == 1
    assert env.driver.disk_copies[SERVER_A].startswith("what the guest wrote")


def test_agent_resize_of_a_stopped_server_leaves_it_off(env: Any) -> None:  # noqa: F811
    spawned(env)
    env.driver.power_off(SERVER_A, 0)
    env.api.servers[SERVER_A] = resized(desired_power="shutdown", vm_state="stopped")
    assert env.agent.reconcile_once().ok
    last = env.api.last(SERVER_A)
    assert last["resize_generation"] == 1 and last["vm_state"] == "stopped"
    assert env.driver.domains[SERVER_A].spec.memory_mb == 1024


def test_agent_resize_failure_is_an_error(env: Any) -> None:  # noqa: F811
    from stratus.agent.compute.virt.base import VirtError

    spawned(env)
    env.api.servers[SERVER_A] = resized()
    env.driver.fail["grow_disk"] = VirtError("qemu-img resize: boom", temporary=False)
    env.agent.reconcile_once()
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "error" and "boom" in last["fault"]["message"]
    assert last["resize_generation"] == 1


def test_a_volume_backed_server_resizes_memory_and_vcpus_only(tmp_path: Path) -> None:
    from test_compute_volumes_api import VOL, FakeVolumes

    with in_process(tmp_path) as api:
        api.flavor(id="1")
        api.flavor(name="m1.nodisk", id="3", vcpus=2, ram=1024, disk=0)  # 0: no local disk
        api.host("cmp1", host_ip="192.0.2.10")
        vols = FakeVolumes()
        vols.volume(VOL)
        api.fake.volumes = vols
        sid = api.boot(imageRef="", block_device_mapping_v2=[{
            "uuid": VOL, "source_type": "volume", "destination_type": "volume",
            "boot_index": 0}])["server"]["id"]
        bdms = agent_view(api, sid)["block_devices"]
        api.report("cmp1", sid, vm_state="active", power_state=1,
                   volumes=[b["attachment_id"] for b in bdms])
        disk_before = claimed(api)[2]
        assert action(api, sid, {"resize": {"flavorRef": "3"}}).status_code == 202
        assert claimed(api)[2] == disk_before  # the root disk is the volume
        assert agent_view(api, sid)["flavor"]["ram"] == 1024


def test_agent_resize_of_a_volume_backed_server_leaves_the_disk(env: Any) -> None:  # noqa: F811
    vda = {"volume_id": "v1", "attachment_id": "a1", "device": "vda", "boot_index": 0,
           "initiator": "iqn.x", "connection_info": {
               "driver_volume_type": "iscsi", "data": {
                   "target_iqn": "iqn.t", "target_portal": "127.0.0.1:3260",
                   "target_lun": 1, "volume_id": "v1"}}}
    env.api.servers[SERVER_A] = assignment(image_id=None, block_devices=[vda])
    assert env.agent.reconcile_once().ok
    env.api.servers[SERVER_A] = resized(image_id=None, block_devices=[vda])
    assert env.agent.reconcile_once().ok
    assert env.api.last(SERVER_A)["resize_generation"] == 1
    assert env.driver.domains[SERVER_A].spec.memory_mb == 1024
    assert not {"keep_disk_copy", "grow_disk"} & {m for m, _ in env.driver.calls}
