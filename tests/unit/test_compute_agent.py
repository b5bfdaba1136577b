"""The compute agent's loop against the fake driver and fake compute/image/network APIs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.compute.converge import StepClock
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.base import PAUSED, RUNNING, SHUTDOWN, SUSPENDED, VirtError
from stratus.agent.compute.virt.fake import FakeDriver
from stratus.common.clients import ServiceError
from stratus.contracts.compute import Assignment, AssignmentSet, HostResources, ServerReport
from stratus.contracts.instance import InstanceDocument
from stratus.contracts.network import tap_name

pytestmark = pytest.mark.unit

SERVER_A = "0b6f7d2e-1111-4c3b-9a51-0d8b8b1c0a01"
SERVER_B = "0b6f7d2e-2222-4c3b-9a51-0d8b8b1c0a02"
IMAGE = "5c2a8f2e-aaaa-4bb1-8f0e-7c1e9b9d0001"
IMAGE_DATA = b"QFI\xfb" + bytes(range(256)) * 64


def image_meta(data: bytes = IMAGE_DATA, fmt: str = "qcow2") -> dict[str, Any]:
    return {"disk_format": fmt, "checksum": hashlib.md5(data).hexdigest(),
            "os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest(),
            "size": len(data), "min_disk": 0, "properties": {}}


def assignment(sid: str = SERVER_A, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": sid, "name": "web1", "hostname": "web1", "project_id": "p", "user_id": "u",
        "image_id": IMAGE, "image": image_meta(),
        "flavor": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 256, "disk": 1,
                   "swap": 0, "ephemeral": 0, "extra_specs": {}},
        "vm_state": "building", "task_state": "spawning", "desired_power": "running",
        "reboot": {"generation": 0, "type": "SOFT"}, "delete": False, "config_drive": False,
        "ports": [{"id": sid[-4:] + "9f1c2d3e-port-0001", "network_id": "n",
                   "mac_address": "fa:16:3e:00:00:0b", "mtu": 1450,
                   "fixed_ips": [{"subnet_id": "s", "ip_address": "192.168.10.11"}]}],
        "metadata_document": {"uuid": sid, "name": "web1", "hostname": "web1"},
        "snapshots": [], "attempt": 1, "created_at": "2026-01-01T00:00:00Z",
    }
    doc.update(kw)
    return doc


class FakeComputeApi:
    """Serves ``servers`` as the assignment document and applies reports like the API
    (the documents in their JSON form, as on the wire)."""

    def __init__(self, servers: list[dict[str, Any]] | None = None):
        self.servers = {s["id"]: s for s in servers or []}
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.generation = 1
        self.lock = threading.Lock()
        self.fail: ServiceError | None = None

    def assignments(self, wait: float | None = None, since: int | None = None
                    ) -> AssignmentSet:
        if self.fail:
            raise self.fail
        with self.lock:
            return AssignmentSet.from_dict({"generation": self.generation,
                                            "servers": [dict(s) for s in self.servers.values()]})

    def report(self, server_id: str, report: ServerReport) -> None:
        body = report.to_dict()
        with self.lock:
            self.reports.append((server_id, body))
            server = self.servers.get(server_id)
            if server is None:
                raise ServiceError("not on this host", status=409)
            if body.get("deleted") or body.get("reschedule"):
                del self.servers[server_id]
                return
            for key in ("vm_state", "task_state"):
                if key in body:
                    server[key] = body[key]
            if "snapshots_done" in body:
                server["snapshots"] = [s for s in server["snapshots"]
                                       if s["image_id"] not in body["snapshots_done"]]

    def heartbeat(self, resources: HostResources) -> None:
        self.heartbeats.append(resources.to_dict())

    def last(self, server_id: str) -> dict[str, Any]:
        return [b for sid, b in self.reports if sid == server_id][-1]


class FakeImageApi:
    def __init__(self, data: bytes = IMAGE_DATA):
        self.data = data
        self.fetches = 0
        self.uploads: dict[str, bytes] = {}
        self.upload_error: ServiceError | None = None

    def fetch(self, image_id: str) -> Iterator[bytes]:
        self.fetches += 1
        for i in range(0, len(self.data), 1000):
            yield self.data[i:i + 1000]

    def upload(self, image_id: str, path: str) -> None:
        if self.upload_error:
            raise self.upload_error
        with open(path, "rb") as fh:
            self.uploads[image_id] = fh.read()


class FakeNetworkApi:
    def __init__(self, active_after: int = 0):
        self.active_after = active_after
        self.calls = 0

    def port_status(self, port_id: str) -> str:
        self.calls += 1
        return "ACTIVE" if self.calls > self.active_after else "DOWN"

    def wait_active(self, port_id: str, timeout: float) -> str:
        return self.port_status(port_id)  # an API that answers at once (cannot wait)


def fallback_render(doc: InstanceDocument) -> dict[str, bytes]:
    """A stand-in for stratus.contracts.metadata_tree.render in unit tests."""
    return {"openstack/latest/meta_data.json": json.dumps(doc.to_dict()).encode()}


# --- tests ------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e: Any = types.SimpleNamespace()
    e.driver = FakeDriver()
    e.api = FakeComputeApi()
    e.images = FakeImageApi()
    e.network = FakeNetworkApi()
    e.settings = AgentSettings(host="cmp1", instances_path=str(tmp_path / "instances"),
                               shutdown_timeout=0, vif_plug_timeout=5)

    def make(**kw: Any) -> ComputeAgent:
        return ComputeAgent(e.settings, e.driver, e.api, e.images, e.network,
                            render=fallback_render, sleep=lambda _s: None, **kw)

    e.make = make
    e.agent = make()
    yield e
    e.agent.pool.shutdown(wait=True)


def test_s9e_spawn_passes_the_flavors_ephemeral_and_swap(env: Any) -> None:
    a = assignment()
    a["flavor"] = dict(a["flavor"], ephemeral=1, swap=128)
    env.api.servers[a["id"]] = a
    result = env.agent.reconcile_once()
    assert result.ok, result.errors
    spec = env.driver.domains[SERVER_A].spec
    assert (spec.ephemeral_gb, spec.swap_mb, spec.disk_gb) == (1, 128, 1)


def test_spawn_reports_active_and_builds_everything(env: Any) -> None:
    a = assignment(config_drive=True)
    env.api.servers[a["id"]] = a
    result = env.agent.reconcile_once()
    assert result.ok, result.errors
    dom = env.driver.domains[SERVER_A]
    assert dom.state == RUNNING
    assert dom.spec.vcpus == 1 and dom.spec.memory_mb == 256 and dom.spec.disk_gb == 1
    assert dom.spec.image_format == "qcow2"
    assert Path(dom.spec.image_path).read_bytes() == IMAGE_DATA
    assert Path(dom.spec.image_path).name == hashlib.sha1(IMAGE.encode()).hexdigest()
    tap = tap_name(env.settings.deploy_prefix, a["ports"][0]["id"])
    assert tap.startswith("st-tp")  # the name the network agent of deploy "st" plugs
    assert env.driver.taps == {tap: 1450}
    assert json.loads(env.driver.config_drives[SERVER_A]["openstack/latest/meta_data.json"]
                      )["uuid"] == SERVER_A
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "active" and last["power_state"] == RUNNING
    assert last["task_state"] is None and last["fault"] is None
    assert "booted" in last["console_tail"]
    assert env.network.calls >= 1


def test_second_pass_and_restart_recreate_nothing(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    calls = list(env.driver.calls)
    assert env.agent.reconcile_once().ok
    restarted = env.make()
    try:
        assert restarted.reconcile_once().ok
    finally:
        restarted.pool.shutdown(wait=True)
    assert env.driver.calls == calls  # no spawn step, no destroy, no power action
    assert env.driver.domains[SERVER_A].boots == 1
    assert env.images.fetches == 1
    assert env.api.last(SERVER_A)["vm_state"] == "active"


def test_orphan_domain_and_files_are_removed(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.api.servers[SERVER_B] = assignment(SERVER_B)
    env.agent.reconcile_once()
    assert set(env.driver.domains) == {SERVER_A, SERVER_B}
    del env.api.servers[SERVER_B]  # e.g. deleted while the agent was down
    assert env.agent.reconcile_once().ok
    assert set(env.driver.domains) == {SERVER_A}
    assert SERVER_B not in env.driver.dirs and SERVER_B not in env.driver.disks
    assert env.driver.taps == {tap_name("st", assignment()["ports"][0]["id"]): 1450}
    assert env.agent.store.ids() == {SERVER_A}


def test_delete_removes_everything_and_reports_deleted(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment(config_drive=True)
    env.agent.reconcile_once()
    env.api.servers[SERVER_A].update(delete=True, task_state="deleting")
    assert env.agent.reconcile_once().ok
    assert env.api.reports[-1] == (SERVER_A, {"deleted": True})
    assert not env.driver.domains and not env.driver.taps and not env.driver.disks
    assert not env.driver.config_drives and not env.agent.store.ids()


def test_crash_mid_spawn_redoes_it_from_scratch(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.driver.fail["power_on"] = KeyboardInterrupt()  # the process "dies" here
    with contextlib.suppress(KeyboardInterrupt):
        env.agent._spawn(Assignment.from_dict(env.api.servers[SERVER_A]), None)
    assert SERVER_A in env.driver.domains and env.agent.store.load(SERVER_A).spawned is False
    # a new agent process: the half-made server is removed and spawned again
    del env.driver.fail["power_on"]
    agent = env.make()
    try:
        assert agent.reconcile_once().ok
    finally:
        agent.pool.shutdown(wait=True)
    methods = [m for m, _ in env.driver.calls]
    assert methods.count("destroy") == 1
    assert methods[-4:] == ["prepare_disks", "plug_vifs", "define", "power_on"]
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["vm_state"] == "active"
    assert env.agent.store.load(SERVER_A).spawned is True


def test_spawn_failure_cleans_up_and_asks_for_reschedule(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.driver.fail["define"] = VirtError("virsh define: boom")
    env.agent.reconcile_once()
    body = env.api.last(SERVER_A)
    assert body["reschedule"] is True and "boom" in body["fault"]["message"]
    assert not env.driver.domains and not env.driver.taps and not env.driver.disks
    assert not env.agent.store.ids()


def test_bad_image_checksum_fails_the_spawn(env: Any) -> None:
    a = assignment()
    a["image"] = dict(a["image"], checksum="0" * 32)
    env.api.servers[SERVER_A] = a
    env.agent.reconcile_once()
    body = env.api.last(SERVER_A)
    assert body["reschedule"] is True and "md5" in body["fault"]["message"]
    base = Path(env.settings.instances_path, "_base")
    assert [p.name for p in base.iterdir() if not p.name.endswith(".lock")] == []


def test_unsupported_disk_format_is_refused(env: Any) -> None:
    a = assignment()
    a["image"] = dict(a["image"], disk_format="vmdk")
    env.api.servers[SERVER_A] = a
    env.agent.reconcile_once()
    assert "vmdk" in env.api.last(SERVER_A)["fault"]["message"]
    assert env.images.fetches == 0


def test_vif_plug_wait_waits_for_active_then_times_out(env: Any) -> None:
    env.network.active_after = 3
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    assert env.network.calls == 4
    assert env.api.last(SERVER_A)["vm_state"] == "active"

    env.settings.vif_plug_timeout = 0
    env.network.active_after = 10 ** 6
    env.api.servers[SERVER_B] = assignment(SERVER_B)
    env.agent.reconcile_once()
    body = env.api.last(SERVER_B)
    assert body["reschedule"] is True and "not ACTIVE" in body["fault"]["message"]
    assert SERVER_B not in env.driver.domains


class WaitingNetworkApi:
    """A network API with the long-poll: each wait ends when its port is ACTIVE."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, float]] = []

    def port_status(self, port_id: str) -> str:
        raise AssertionError("the agent asked instead of waiting")

    def wait_active(self, port_id: str, timeout: float) -> str:
        self.waits.append((port_id, timeout))
        return "ACTIVE"


def test_vif_plug_wait_long_polls_without_pausing(env: Any) -> None:
    pauses: list[float] = []
    env.agent.network = WaitingNetworkApi()
    env.agent.sleep = pauses.append
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    assert env.api.last(SERVER_A)["vm_state"] == "active"
    waits = env.agent.network.waits
    assert [p for p, _ in waits] == [p["id"] for p in assignment()["ports"]]
    assert all(0 < t <= env.settings.vif_plug_timeout for _, t in waits)
    assert pauses == []


def test_vif_plug_wait_off_does_not_ask_the_network(env: Any) -> None:
    env.settings.vif_plug_wait = False
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    assert env.network.calls == 0
    assert env.api.last(SERVER_A)["vm_state"] == "active"


@pytest.mark.parametrize(("task", "desired", "state", "vm_state"), [
    ("powering-off", "shutdown", SHUTDOWN, "stopped"),
    ("pausing", "paused", PAUSED, "paused"),
    ("suspending", "suspended", SUSPENDED, "suspended"),
])
def test_power_actions_follow_desired_power(env: Any, task: str, desired: str, state: int,
                                            vm_state: str) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    env.api.servers[SERVER_A].update(task_state=task, desired_power=desired)
    env.agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == state
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == vm_state and last["power_state"] == state
    assert last["task_state"] is None
    # and back on
    back = {"shutdown": "powering-on", "paused": "unpausing", "suspended": "resuming"}[desired]
    env.api.servers[SERVER_A].update(task_state=back, desired_power="running")
    env.agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["vm_state"] == "active"


def test_guest_shutdown_without_task_is_reported_stopped_not_restarted(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    env.driver.domains[SERVER_A].state = SHUTDOWN  # the guest powered itself off
    env.agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == SHUTDOWN
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "stopped" and last["power_state"] == SHUTDOWN
    assert "task_state" not in last  # never clears a task it did not do


def test_vanished_domain_is_stopped_then_redefined_on_start(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    del env.driver.domains[SERVER_A]  # undefined behind our back, disk still there
    env.agent.reconcile_once()
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "stopped" and last["power_state"] == SHUTDOWN
    env.api.servers[SERVER_A].update(task_state="powering-on", desired_power="running")
    env.agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["vm_state"] == "active"


def test_vanished_domain_and_disk_is_an_error(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    del env.driver.domains[SERVER_A]
    del env.driver.disks[SERVER_A]
    env.agent.reconcile_once()
    last = env.api.last(SERVER_A)
    assert last["vm_state"] == "error" and "gone" in last["fault"]["message"]


def test_reboot_generations(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment(reboot={"generation": 2, "type": "SOFT"})
    env.agent.reconcile_once()  # a fresh boot satisfies earlier reboot requests
    assert env.api.last(SERVER_A)["reboot_generation"] == 2
    env.api.servers[SERVER_A].update(reboot={"generation": 3, "type": "HARD"},
                                     task_state="rebooting_hard")
    env.agent.reconcile_once()
    env.agent.reconcile_once()
    methods = [m for m, _ in env.driver.calls]
    assert methods.count("reboot_hard") == 1 and "reboot_soft" not in methods
    assert env.api.last(SERVER_A)["vm_state"] == "active"
    assert [b.get("reboot_generation") for _, b in env.api.reports].count(3) == 1
    env.api.servers[SERVER_A].update(reboot={"generation": 4, "type": "SOFT"})
    agent = env.make()  # the generation done survives a restart
    try:
        agent.reconcile_once()
        agent.reconcile_once()
    finally:
        agent.pool.shutdown(wait=True)
    assert [m for m, _ in env.driver.calls].count("reboot_soft") == 1


def test_snapshot_is_uploaded_once_and_reported(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    snap = "7e0d0d0d-0000-4000-8000-000000000001"
    env.api.servers[SERVER_A].update(snapshots=[{"image_id": snap, "name": "s1"}],
                                     task_state="image_uploading")
    env.agent.reconcile_once()
    assert env.images.uploads[snap].startswith(b"QFI\xfb")
    last = env.api.last(SERVER_A)
    assert last["snapshots_done"] == [snap] and last["task_state"] is None
    assert not list(Path(env.settings.instances_path, "_snapshots").iterdir())
    env.agent.reconcile_once()
    assert [m for m, _ in env.driver.calls].count("snapshot") == 1


def test_snapshot_upload_error_is_retried(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    snap = "7e0d0d0d-0000-4000-8000-000000000002"
    env.api.servers[SERVER_A].update(snapshots=[{"image_id": snap, "name": "s1"}])
    env.images.upload_error = ServiceError("image unreachable", temporary=True)
    result = env.agent.reconcile_once()
    assert SERVER_A in result.errors and snap not in env.images.uploads
    env.images.upload_error = None
    assert env.agent.reconcile_once().ok
    assert snap in env.images.uploads


def test_one_failing_server_does_not_stop_the_others(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.api.servers[SERVER_B] = assignment(SERVER_B)
    env.agent.reconcile_once()
    env.api.servers[SERVER_A].update(task_state="powering-off", desired_power="shutdown")
    env.api.servers[SERVER_B].update(task_state="pausing", desired_power="paused")
    env.driver.fail["power_off"] = VirtError("virsh: temporary trouble")
    result = env.agent.reconcile_once()
    assert set(result.errors) == {SERVER_A}
    assert env.driver.domains[SERVER_B].state == PAUSED
    del env.driver.fail["power_off"]
    assert env.agent.reconcile_once().ok
    assert env.driver.domains[SERVER_A].state == SHUTDOWN


def test_concurrent_spawns_of_one_image_download_it_once(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.api.servers[SERVER_B] = assignment(SERVER_B)
    assert env.agent.reconcile_once().ok
    assert env.images.fetches == 1
    assert env.driver.domains[SERVER_A].spec.image_path == \
        env.driver.domains[SERVER_B].spec.image_path


def test_console_tail_reported_when_it_changes(env: Any) -> None:
    env.settings.console_interval = 0
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    n = len([b for _, b in env.api.reports if "console_tail" in b])
    env.agent.report_consoles()
    assert len([b for _, b in env.api.reports if "console_tail" in b]) == n
    env.driver.consoles[SERVER_A] += b"x" * 70000 + b"STRATUS-GUEST: ready\n"
    env.agent.report_consoles()
    tail = env.api.last(SERVER_A)["console_tail"]
    assert tail.endswith("STRATUS-GUEST: ready\n") and len(tail) == 64 * 1024


def test_heartbeat_reports_resources(env: Any) -> None:
    env.settings.vcpus = 8
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    assert env.agent.heartbeat()
    beat = env.api.heartbeats[-1]
    assert beat["vcpus"] == 8 and beat["vcpus_used"] == 1 and beat["memory_mb_used"] == 256
    assert beat["running_vms"] == 1 and beat["virt_type"] == "qemu"
    assert beat["hypervisor_hostname"] == "cmp1" and beat["memory_mb"] > 0
    assert beat["local_gb"] > 0 and beat["hypervisor_version"] == 7002000


def test_api_unreachable_is_an_error_and_touches_nothing(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    env.api.fail = ServiceError("compute unreachable", temporary=True)
    result = env.agent.reconcile_once()
    assert "assignments" in result.errors
    assert SERVER_A in env.driver.domains  # never mistaken for "no assignments"


def test_error_server_is_left_alone(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment(vm_state="error", task_state=None)
    assert env.agent.reconcile_once().ok
    assert not env.driver.domains and env.images.fetches == 0


def test_image_cache_reclaims_unused_bases(env: Any) -> None:
    env.api.servers[SERVER_A] = assignment()
    env.agent.reconcile_once()
    base = Path(env.driver.domains[SERVER_A].spec.image_path)
    env.settings.image_cache_max_age = 0
    env.agent.reconcile_once()
    assert base.exists()  # in use
    del env.api.servers[SERVER_A]
    env.agent.reconcile_once()
    assert not base.exists()


def test_main_says_a_bad_config_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus.agent.compute.agent import main

    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(tmp_path / "unused.conf"))  # restored after
    assert main(["--config-file", str(tmp_path / "missing.conf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stratus-compute-agent: ") and "missing.conf" in err
    assert err.count("\n") == 1
    bad = tmp_path / "bad.conf"
    bad.write_text("[compute_agent]\nhots = cmp1\n")
    assert main(["--config-file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stratus-compute-agent: ") and "hots" in err and err.count("\n") == 1


# --- resume after a host boot (agent/compute/bootresume.py) ---------------------------


def _booted(env: Any, tmp_path: Path, boot: str, **kw: Any) -> ComputeAgent:
    """A new agent process on a host whose kernel boot id is now ``boot``."""
    boot_id = tmp_path / "boot_id_now"
    boot_id.write_text(boot + "\n")
    env.settings.boot_id_path = str(boot_id)
    # PID 1's start time unreadable: the kernel's id alone (test_compute_bootresume.py has both)
    env.settings.init_stat_path = str(tmp_path / "no-init-stat")
    env.agent.pool.shutdown(wait=True)
    env.agent = env.make(**kw)
    return env.agent


def test_a_host_boot_starts_the_running_servers_but_not_the_stopped_ones(
        env: Any, tmp_path: Path) -> None:
    _booted(env, tmp_path, "boot-1")
    env.api.servers[SERVER_A] = assignment()
    env.api.servers[SERVER_B] = assignment(SERVER_B)
    env.agent.reconcile_once()
    env.api.servers[SERVER_A].update(vm_state="active", task_state=None)
    env.api.servers[SERVER_B].update(vm_state="stopped", task_state=None,
                                     desired_power="shutdown")
    for sid in (SERVER_A, SERVER_B):  # the boot: every domain is shut off
        env.driver.domains[sid].state = SHUTDOWN
    agent = _booted(env, tmp_path, "boot-2")
    assert agent.boot_resume.booted
    agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == RUNNING
    assert env.api.last(SERVER_A)["vm_state"] == "active"
    assert env.driver.domains[SERVER_B].state == SHUTDOWN
    assert env.api.last(SERVER_B)["vm_state"] == "stopped"
    assert (Path(env.settings.instances_path) / "_boot_id").read_text().strip() == "boot-2"
    # the same boot: a guest that shuts itself down now stays down
    env.driver.domains[SERVER_A].state = SHUTDOWN
    agent = _booted(env, tmp_path, "boot-2")
    assert not agent.boot_resume.booted
    agent.reconcile_once()
    assert env.driver.domains[SERVER_A].state == SHUTDOWN


def test_no_resume_when_the_setting_is_off_or_on_a_first_start(
        env: Any, tmp_path: Path) -> None:
    env.api.servers[SERVER_A] = assignment()
    _booted(env, tmp_path, "boot-1").reconcile_once()
    env.api.servers[SERVER_A].update(vm_state="active", task_state=None)
    env.driver.domains[SERVER_A].state = SHUTDOWN
    env.settings.resume_guests_state_on_host_boot = False
    _booted(env, tmp_path, "boot-2").reconcile_once()
    assert env.driver.domains[SERVER_A].state == SHUTDOWN
    (Path(env.settings.instances_path) / "_boot_id").unlink()  # never recorded: a first start
    env.settings.resume_guests_state_on_host_boot = True
    _booted(env, tmp_path, "boot-3").reconcile_once()
    assert env.driver.domains[SERVER_A].state == SHUTDOWN


def test_the_step_clock_times_each_step_from_the_end_of_the_last() -> None:
    ticks = iter([10.0, 10.5, 10.75, 12.0])
    steps = StepClock(clock=lambda: next(ticks))
    steps.mark("image")
    steps.mark("taps")
    steps.mark("start")
    assert steps.steps == [("image", 0.5), ("taps", 0.25), ("start", 1.25)]
    assert steps.total == 2.0
    assert str(steps) == "image 0.50, taps 0.25, start 1.25"


def test_spawn_and_delete_log_what_each_step_cost(env: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Issue 17: the "spawned" and "deleted" lines say where the time went."""
    env.api.servers[SERVER_A] = assignment()
    with caplog.at_level(logging.INFO, logger="stratus.agent.compute.reconcile"):
        assert env.agent.reconcile_once().ok
        env.api.servers[SERVER_A].update(delete=True, task_state="deleting")
        assert env.agent.reconcile_once().ok
    spawned = next(r.getMessage() for r in caplog.records if " spawned in " in r.getMessage())
    assert re.search(r"spawned in [\d.]+s \(check [\d.]+, image [\d.]+, disks [\d.]+, "
                     r"taps [\d.]+, define [\d.]+, ports ACTIVE [\d.]+, start [\d.]+, "
                     r"state [\d.]+\)$", spawned), spawned
    deleted = next(r.getMessage() for r in caplog.records if " deleted in " in r.getMessage())
    assert re.search(r"deleted in [\d.]+s \(destroy [\d.]+, report [\d.]+\)$", deleted), deleted
