"""The compute agent's volumes against the fake driver: plug what the assignment lists,
unplug what it no longer lists, report the plugged attachments, finish or undo a pass
cut short (a crash between the secret and the device), sweep leftover secrets; and the
libvirt driver's XML and parsing helpers."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings, ServerState
from stratus.agent.compute.virt import volumes as vv
from stratus.agent.compute.virt.base import RUNNING, InstanceSpec, VirtError, VolumeSpec
from stratus.agent.compute.virt.fake import FakeDomain, FakeDriver
from stratus.agent.compute.volumes import volume_spec
from stratus.contracts.compute import Assignment, AssignmentSet, BlockDevice, ServerReport

pytestmark = pytest.mark.unit
SID = "0b6f7d2e-1111-4c3b-9a51-0d8b8b1c0a01"
VOL = "22222222-2222-4222-8222-222222222222"


def bdm(aid: str = "att-1", device: str = "vdb", **data: Any) -> dict[str, Any]:
    return {"volume_id": VOL, "attachment_id": aid, "device": device,
            "initiator": "iqn.2010-10.org.stratus:cmp1",
            "connection_info": {"driver_volume_type": "iscsi", "data": {
                "target_iqn": "iqn.2010-10.org.stratus-test:v1",
                "target_portal": "127.0.0.1:13261", "target_lun": 1,
                "auth_method": "CHAP", "auth_username": "u1", "auth_password": "pw1",
                **data}}}


class Api:
    """The compute API as the agent sees it: one active server, reports recorded."""

    def __init__(self) -> None:
        self.server: dict[str, Any] = {
            "id": SID, "vm_state": "active", "task_state": None, "image_id": "i",
            "flavor": {"id": "1", "name": "t", "vcpus": 1, "ram": 64, "disk": 0, "swap": 0,
                       "ephemeral": 0, "extra_specs": {}}, "attempt": 1}
        self.reports: list[dict[str, Any]] = []

    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> AssignmentSet:
        return AssignmentSet.from_dict({"generation": 1, "servers": [dict(self.server)]})

    def report(self, server_id: str, report: ServerReport) -> None:
        self.reports.append(report.to_dict())

    def heartbeat(self, resources: Any) -> None:
        pass


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e: Any = types.SimpleNamespace(driver=FakeDriver(), api=Api())
    settings = AgentSettings(host="cmp1", instances_path=str(tmp_path / "instances"),
                             shutdown_timeout=0, vif_plug_wait=False)
    spec = InstanceSpec(SID, "vm", 1, 64, 0, "/base", "qcow2")
    e.driver.domains[SID] = FakeDomain(spec, state=RUNNING)
    e.driver.disks[SID] = "/base"
    images = types.SimpleNamespace(fetch=lambda _i: iter(()), upload=lambda _i, _p: None)
    e.agent = ComputeAgent(settings, e.driver, e.api, images, None,
                           render=lambda d: {}, sleep=lambda _s: None)
    e.agent.store.save(SID, ServerState(spawned=True, attempt=1))
    yield e
    e.agent.pool.shutdown(wait=True)


def test_plug_report_unplug_and_secret(env: Any) -> None:
    env.api.server["block_devices"] = [bdm()]
    assert env.agent.reconcile_once().ok
    plugged = env.driver.volumes[SID]["att-1"]
    assert (plugged.host, plugged.port, plugged.lun, plugged.device) == (
        "127.0.0.1", 13261, 1, "vdb")
    assert plugged.initiator == "iqn.2010-10.org.stratus:cmp1"
    assert env.driver.secrets == {"att-1"}
    assert env.api.reports[-1]["volumes"] == ["att-1"]
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # nothing to do the second time
    assert len(env.driver.calls) == calls
    env.api.server["block_devices"] = []
    assert env.agent.reconcile_once().ok
    assert env.driver.volumes[SID] == {} and env.driver.secrets == set()
    assert env.api.reports[-1]["volumes"] == []


def test_a_pass_cut_short_is_finished_or_undone(env: Any) -> None:
    env.api.server["block_devices"] = [bdm()]
    # killed after the secret, before the device: the next pass plugs it
    env.driver.fail["attach_volume_device"] = RuntimeError("kill -9")
    env.agent.reconcile_once()
    assert env.driver.secrets == {"att-1"} and SID not in env.driver.volumes
    del env.driver.fail["attach_volume_device"]
    assert env.agent.reconcile_once().ok
    assert env.api.reports[-1]["volumes"] == ["att-1"]
    # killed after unplugging, before removing the secret (and before the pass's sweep):
    # the next pass's sweep removes it
    env.api.server["block_devices"] = []
    env.driver.fail["detach_volume_secret"] = RuntimeError("kill -9")
    env.driver.fail["remove_volume_secret"] = VirtError("killed before the sweep")
    env.agent.reconcile_once()
    assert env.driver.volumes[SID] == {} and env.driver.secrets == {"att-1"}
    env.driver.fail.clear()
    assert env.agent.reconcile_once().ok
    assert env.driver.secrets == set()
    assert env.api.reports[-1]["volumes"] == []


def test_failed_volume_is_retried_and_others_go_on(env: Any) -> None:
    env.api.server["block_devices"] = [
        bdm("att-1"), {**bdm("att-2", "vdc"), "connection_info": {"driver_volume_type": "rbd"}}]
    env.agent.reconcile_once()
    assert set(env.driver.volumes[SID]) == {"att-1"}
    assert env.api.reports[-1]["volumes"] == ["att-1"]


def test_leftover_secrets_of_destroyed_servers_are_swept(env: Any) -> None:
    env.api.server["block_devices"] = [bdm()]
    env.agent.reconcile_once()
    env.driver.secrets.add("att-gone")  # a leftover of a server destroyed earlier
    env.agent.reconcile_once()
    assert env.driver.secrets == {"att-1"}  # the wanted one stays


def test_the_daemon_passes_sweep_leftover_secrets_once_idle(env: Any) -> None:
    """The run loop's passes do not wait for the servers' work: a pass sweeps when the last
    pass's work is all done (a deleted boot-from-volume server's secret, seen e2e), even
    though every pass submits new work for the assigned servers."""
    env.api.server["block_devices"] = [bdm()]
    env.agent.reconcile_once()
    servers = env.api.assignments().servers
    converge = env.agent.converge
    gate = threading.Event()

    def slow_converge(a: Any) -> None:  # a pass's own work is still running as it ends
        gate.wait(5)
        time.sleep(0.2)
        converge(a)

    env.agent.converge = slow_converge
    env.agent.reconcile(servers)
    env.driver.secrets.add("att-gone")
    env.agent.reconcile(servers)  # the last pass's work is in flight: no sweep
    assert "att-gone" in env.driver.secrets
    gate.set()
    concurrent.futures.wait(list(env.agent._inflight.values()))
    env.agent.reconcile(servers)  # the last pass's work is done: this one sweeps
    concurrent.futures.wait(list(env.agent._inflight.values()))
    assert env.driver.secrets == {"att-1"}


def test_volume_spec_from_connection_info() -> None:
    spec = volume_spec(BlockDevice.from_dict(bdm(target_portal="[::1]:3260")))
    assert (spec.host, spec.port, spec.username, spec.password) == ("::1", 3260, "u1", "pw1")
    with pytest.raises(VirtError, match="incomplete"):
        volume_spec(BlockDevice.from_dict({**bdm(), "connection_info": {
            "driver_volume_type": "iscsi", "data": {}}}))


def test_contract_round_trip_and_report() -> None:
    a = Assignment.from_dict({"id": SID, "vm_state": "active", "block_devices": [bdm()]})
    assert a.block_devices[0].device == "vdb"
    assert Assignment.from_dict(a.to_dict()) == a
    assert "block_devices" not in Assignment(id=SID, vm_state="active").to_dict()
    assert ServerReport.from_dict({"volumes": ["a"]}).volumes == ["a"]
    with pytest.raises(ValueError, match="volumes"):
        ServerReport.from_dict({"volumes": "a"})


def test_libvirt_xml_helpers() -> None:
    vol = VolumeSpec("att-1", VOL, "vdb", "iqn.x:v1", 1, "127.0.0.1", 13261, "u1", "pw1",
                     "iqn.2010-10.org.stratus:cmp1")
    usage = "tvc-volume-att-1"
    disk = vv.disk_xml(vol, usage)
    assert "protocol=\"iscsi\"" in disk and "name=\"iqn.x:v1/1\"" in disk
    assert "pw1" not in disk and f"usage=\"{usage}\"" in disk
    dom = f"<domain><devices>{disk}<disk type='file'><target dev='vda'/></disk>" \
          "</devices></domain>"
    assert vv.volume_disks(dom, "tvc-volume-") == {"att-1": "vdb"}
    assert vv.volume_disks(dom, "other-volume-") == {}
    assert vv.secret_prefix("st-instance-") == "st-volume-"
    assert vv.secret_prefix("tvc-") == "tvc-volume-"
    listing = " 5a1e...-uuid  iscsi tvc-volume-att-1\n 77-uuid  ceph client.admin\n"
    assert vv.parse_secret_list(listing) == {"tvc-volume-att-1": "5a1e...-uuid"}


def test_a_detach_whose_report_was_lost_is_reported_again(env: Any) -> None:
    """Killed after unplugging and removing the secret but before reporting: nothing of
    the volume is left on the host, yet the agent reports (the API lists it detaching)."""
    env.api.server["detaching"] = ["att-1"]
    assert env.agent.reconcile_once().ok
    assert env.api.reports[-1]["volumes"] == []
    del env.api.server["detaching"]
    assert env.agent.reconcile_once().ok
    assert "volumes" not in env.api.reports[-1]  # nothing to say: no virsh call per pass


def test_detaching_contract() -> None:
    a = Assignment.from_dict({"id": SID, "vm_state": "active", "detaching": ["att-1"]})
    assert a.detaching == ["att-1"] and Assignment.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match=r"detaching\[0\]"):
        Assignment.from_dict({"id": SID, "vm_state": "active", "detaching": [1]})


def test_boot_from_volume_spawns_with_the_root_volume_and_no_image(env: Any) -> None:
    env.driver.domains.clear()
    env.driver.disks.clear()
    env.agent.store.remove(SID)
    env.api.server.update(vm_state="building", task_state="spawning", image_id="",
                          block_devices=[{**bdm("att-root", "vda"), "boot_index": 0}])
    assert env.agent.reconcile_once().ok
    spec = env.driver.domains[SID].spec
    assert spec.root_volume is not None and spec.root_volume.device == "vda"
    assert spec.image_path == "" and env.api.reports[-1]["vm_state"] == "active"
    # the next pass finds the root volume plugged and leaves it alone
    env.driver.volumes[SID] = {"att-root": spec.root_volume}
    env.api.server.update(vm_state="active", task_state=None)
    assert env.agent.reconcile_once().ok
    assert env.api.reports[-1]["volumes"] == ["att-root"]
    assert ("detach_volume", SID) not in env.driver.calls


def test_libvirt_root_volume_replaces_vda() -> None:
    import xml.etree.ElementTree as ET

    from stratus.agent.compute.virt.domain_xml import build_domain

    class Fake(vv.LibvirtVolumes):
        prefix = "tvc-"

        def _ensure_secret(self, vol: VolumeSpec) -> str:
            return f"tvc-volume-{vol.attachment_id}"

    vol = VolumeSpec("att-root", VOL, "vda", "iqn.x:v1", 1, "127.0.0.1", 13261, "u1", "pw1")
    dom = build_domain(InstanceSpec(SID, "x", 1, 64, 0, "", "raw"), domain_name="tvc-x",
                       virt_type="qemu", disk_path="/i/disk", config_drive_path="/i/cd",
                       console_path="/i/c")
    Fake().use_root_volume(dom, vol)
    disks = dom.findall("./devices/disk")
    assert disks[0].get("type") == "network" and disks[0].find("boot") is not None
    assert disks[1].get("device") == "cdrom"
    assert "/i/disk" not in ET.tostring(dom, encoding="unicode")
    assert dom.find("./os/boot") is None


def test_extend_while_attached_has_the_domain_grow_the_disk_once(env: Any) -> None:
    """size_gb larger than the disk shows: the driver is asked to grow it (retried while
    the export still shows the old size), then not asked again."""
    gib = 1024 ** 3
    env.api.server["block_devices"] = [{**bdm("att-grow"), "size_gb": 1}]
    assert env.agent.reconcile_once().ok
    assert env.driver.volume_sizes == {"att-grow": gib}
    env.api.server["block_devices"] = [{**bdm("att-grow"), "size_gb": 2}]
    env.driver.fail["resize_volume"] = VirtError("Cannot grow iSCSI devices")
    env.agent.reconcile_once()
    assert env.driver.volume_sizes == {"att-grow": gib}
    assert env.api.reports[-1]["volumes"] == ["att-grow"]  # still plugged and reported
    del env.driver.fail["resize_volume"]
    assert env.agent.reconcile_once().ok
    assert env.driver.volume_sizes == {"att-grow": 2 * gib}
    calls = len(env.driver.calls)
    assert env.agent.reconcile_once().ok  # seen at that size: no driver call
    assert len(env.driver.calls) == calls
    assert BlockDevice.from_dict({**bdm(), "size_gb": 2}).to_dict()["size_gb"] == 2
    with pytest.raises(ValueError, match="size_gb"):
        BlockDevice.from_dict({**bdm(), "size_gb": "2"})


def test_libvirt_capacity_parsing() -> None:
    out = "Capacity:       2147483648\nAllocation:     0\nPhysical:       2147483648\n"
    assert vv.parse_capacity(out) == 2 * 1024 ** 3
    assert vv.parse_capacity("error") is None
