"""The compute agent's host check (agent/compute/hostcheck.py): /dev/kvm's owner and
mode, libvirt re-probing QEMU, and slow define/start calls, reported in the heartbeat
and in a slow spawn's fault. Fake clocks and a fake stat; no timing assertions."""

from __future__ import annotations

import os
import stat
import types
from pathlib import Path
from typing import Any

import pytest
from test_compute_agent import (
    SERVER_A,
    FakeComputeApi,
    FakeImageApi,
    FakeNetworkApi,
    assignment,
    fallback_render,
)

from stratus.agent.compute.hostcheck import SLOW_FAULT_CODE, HostCheck, caps_header
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.fake import FakeDriver
from stratus.contracts.compute import ContractError, HostProblem, HostResources

pytestmark = pytest.mark.unit

KVM_GID = 109


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def device(mode: int = 0o660, gid: int = KVM_GID, uid: int = 0, char: bool = True
           ) -> os.stat_result:
    kind = stat.S_IFCHR if char else stat.S_IFREG
    return os.stat_result((kind | mode, 1, 1, 1, uid, gid, 0, 0, 0, 0))


def caps_file(path: Path, moddir: str = "100", kvm: bool = True, mtime: float = 1000.0
              ) -> None:
    flag = "<flag name='kvm'/>" if kvm else ""
    path.write_text(f"<qemuCaps>\n  <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
                    f"  <qemuctime>1</qemuctime>\n  <qemumoddirmtime>{moddir}</qemumoddirmtime>\n"
                    f"  <selfctime>2</selfctime>\n  <selfvers>9000000</selfvers>\n"
                    f"  {flag}\n</qemuCaps>\n")
    os.utime(path, (mtime, mtime))


def check(tmp_path: Path, dev: dict[str, os.stat_result], **kw: Any) -> HostCheck:
    def fake_stat(path: str) -> os.stat_result:
        if path not in dev:
            raise FileNotFoundError(path)
        return dev[path]

    return HostCheck(kvm_device="/dev/kvm", caps_dir=str(tmp_path / "caps"),
                     kvm_group=KVM_GID, stat=fake_stat, **kw)


def codes(problems: list[HostProblem]) -> list[str]:
    return [p.code for p in problems]


def test_a_right_kvm_device_and_no_device_are_no_problem(tmp_path: Path) -> None:
    assert check(tmp_path, {"/dev/kvm": device()}).problems() == []
    assert check(tmp_path, {}).problems() == []  # a TCG host without /dev/kvm


@pytest.mark.parametrize("dev", [device(mode=0o600), device(gid=0), device(mode=0o640),
                                 device(char=False)])
def test_a_wrong_kvm_device_is_a_problem_until_it_is_fixed(tmp_path: Path,
                                                           dev: os.stat_result) -> None:
    devs = {"/dev/kvm": dev}
    hc = check(tmp_path, devs)
    problems = hc.problems()
    assert codes(problems) == ["kvm_device"]
    assert "chgrp kvm /dev/kvm; chmod 0660 /dev/kvm" in problems[0].message
    assert problems[0].since and problems[0].since.endswith("Z")
    devs["/dev/kvm"] = device()
    assert "kvm_device" not in codes(hc.problems())


def test_a_kvm_device_changed_while_running_is_reported_for_keep_seconds(
        tmp_path: Path) -> None:
    wall = Clock()
    devs = {"/dev/kvm": device()}
    hc = check(tmp_path, devs, wall=wall, keep_seconds=600)
    assert hc.problems() == []
    devs["/dev/kvm"] = device(mode=0o600, gid=0)
    assert codes(hc.problems()) == ["kvm_device", "kvm_device_changed"]
    devs["/dev/kvm"] = device()  # put back: the change is still worth knowing for a while
    wall.now += 60
    got = hc.problems()
    assert codes(got) == ["kvm_device_changed"]
    assert "/dev/kvm changed from 0:root 0600 to 0:" in got[0].message
    wall.now += 601
    assert hc.problems() == []


def test_a_rewritten_capabilities_file_is_a_qemu_reprobe_with_its_cause(tmp_path: Path) -> None:
    wall = Clock()
    (tmp_path / "caps").mkdir()
    f = tmp_path / "caps" / "abc.xml"
    caps_file(f)
    hc = check(tmp_path, {"/dev/kvm": device()}, wall=wall, keep_seconds=600)
    assert hc.problems() == []  # the first look only remembers
    assert hc.problems() == []  # unchanged: nothing (and the file is not read again)
    caps_file(f, moddir="200", mtime=2000.0)
    got = hc.problems()
    assert codes(got) == ["qemu_reprobe"]
    assert "qemu-system-x86_64" in got[0].message and "module directory" in got[0].message
    caps_file(f, moddir="200", kvm=False, mtime=3000.0)
    assert "/dev/kvm became usable or unusable" in hc.problems()[0].message
    wall.now += 601
    assert hc.problems() == []


def test_caps_header_reads_what_libvirt_checks() -> None:
    text = ("<qemuCaps><emulator>/usr/bin/qemu-system-i386</emulator><selfvers>9000000"
            "</selfvers><kernelVersion>6.1 #1</kernelVersion><flag name='kvm'/></qemuCaps>")
    assert caps_header(text) == {"emulator": "/usr/bin/qemu-system-i386", "selfvers": "9000000",
                                 "kernelVersion": "6.1 #1", "kvm": "yes"}


def test_timed_notes_only_steps_over_the_limit() -> None:
    clock = Clock(0.0)
    hc = HostCheck(kvm_device=None, caps_dir=None, clock=clock)
    with hc.timed("define", "s1"):
        clock.now += 9.5
    assert hc.problems() == [] and hc.spawn_fault("s1") is None
    with pytest.raises(RuntimeError), hc.timed("start", "s2"):
        clock.now += 11
        raise RuntimeError("start failed")  # a failed slow call is still noted
    assert codes(hc.problems()) == ["slow_start"]


@pytest.fixture
def slow_env(tmp_path: Path) -> Any:
    e: Any = types.SimpleNamespace()
    e.clock = Clock(0.0)
    e.driver = FakeDriver()
    real_define = e.driver.define

    def slow_define(spec: Any) -> None:
        e.clock.now += e.define_takes
        real_define(spec)

    e.define_takes = 62.0
    e.driver.define = slow_define
    e.api = FakeComputeApi()
    e.hostcheck = HostCheck(kvm_device=None, caps_dir=None, clock=e.clock)
    e.agent = ComputeAgent(
        AgentSettings(host="cmp1", instances_path=str(tmp_path / "i"), shutdown_timeout=0,
                      vif_plug_timeout=5),
        e.driver, e.api, FakeImageApi(), FakeNetworkApi(), render=fallback_render,
        sleep=lambda _s: None, hostcheck=e.hostcheck)
    yield e
    e.agent.pool.shutdown(wait=True)


def test_a_slow_spawn_is_active_with_a_fault_and_the_heartbeat_says_why(slow_env: Any) -> None:
    slow_env.api.servers[SERVER_A] = assignment()
    slow_env.agent.reconcile_once()
    report = slow_env.api.last(SERVER_A)
    assert report["vm_state"] == "active"
    fault = report["fault"]
    assert fault["code"] == SLOW_FAULT_CODE
    assert fault["message"].startswith("The server was built, but slowly: define took 62.0 s")
    assert "slow_define: define of server " + SERVER_A in fault["details"]
    assert slow_env.agent.heartbeat()
    beat = slow_env.api.heartbeats[-1]
    assert [p["code"] for p in beat["problems"]] == ["slow_define"]
    assert HostResources.from_dict(beat).problems is not None  # the API can read it back


def test_a_quick_spawn_has_no_fault_and_no_problems(slow_env: Any) -> None:
    slow_env.define_takes = 0.2
    slow_env.api.servers[SERVER_A] = assignment()
    slow_env.agent.reconcile_once()
    assert slow_env.api.last(SERVER_A)["fault"] is None
    assert slow_env.agent.heartbeat()
    assert slow_env.api.heartbeats[-1]["problems"] == []


def test_heartbeat_problems_contract() -> None:
    res = HostResources(vcpus=2, problems=[HostProblem("kvm_device", "bad", "2026-01-01T00:00:00Z"),
                                           HostProblem("slow_start", "slow")])
    body = res.to_dict()
    assert body["problems"] == [
        {"code": "kvm_device", "message": "bad", "since": "2026-01-01T00:00:00Z"},
        {"code": "slow_start", "message": "slow"}]
    assert HostResources.from_dict(body) == res
    assert "problems" not in HostResources(vcpus=2).to_dict()  # an older agent: absent
    assert HostResources.from_dict({"vcpus": 2}).problems is None
    assert HostResources.from_dict({"problems": []}).problems == []
    for bad, where in (({"problems": "x"}, "host.problems"),
                       ({"problems": [{"message": "m"}]}, "host.problems[0].code"),
                       ({"problems": [{"code": "c", "since": 5}]}, "host.problems[0].since")):
        with pytest.raises(ContractError) as err:
            HostResources.from_dict(bad)
        assert where in str(err.value)


# --- what the compute API shows --------------------------------------------------------------


@pytest.fixture
def compute(tmp_path: Path) -> Any:
    from compute_api import in_process

    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def test_a_warning_fault_shows_on_a_working_server_and_an_error_fault_only_on_errors(
        compute: Any) -> None:
    """The server view (compute/views.py) shows a fault under code 500 (the agent's slow
    spawn warning) on an ACTIVE server; an error's fault (500) stays hidden unless the
    server is in ERROR, as Nova does."""
    from stratus.compute import models as m

    sid = compute.boot()["server"]["id"]
    host = compute.server(sid)["OS-EXT-SRV-ATTR:host"]
    compute.report(host, sid, vm_state="active", power_state=1)
    assert "fault" not in compute.server(sid)
    for code, shown in ((SLOW_FAULT_CODE, True), (500, False)):
        with compute.core.db.session() as s:
            s.get(m.Server, sid).fault = {"code": code, "created": "2026-01-01T00:00:00Z",
                                          "message": "define took 62.0 s", "details": "d"}
        got = compute.server(sid)
        assert got["status"] == "ACTIVE" and ("fault" in got) is shown
        if shown:
            assert got["fault"]["code"] == SLOW_FAULT_CODE
            assert got["fault"]["message"] == "define took 62.0 s"


def test_the_api_takes_a_heartbeat_with_problems(compute: Any) -> None:
    """A newer agent's heartbeat (with ``problems``) is accepted by the API."""
    body = HostResources(vcpus=4, memory_mb=4096, local_gb=40,
                         problems=[HostProblem("kvm_device", "bad")]).to_dict()
    resp = compute.call("PUT", "/v2.1/stratus/compute-hosts/cmp1", json={"host": body})
    assert resp.status_code == 200, resp.text


def test_a_slow_call_outside_a_spawn_is_a_host_problem_but_no_spawn_fault() -> None:
    clock = Clock(0.0)
    hc = HostCheck(kvm_device=None, caps_dir=None, clock=clock)
    with hc.timed("start", "s1", spawn=False):
        clock.now += 30
    assert codes(hc.problems()) == ["slow_start"]
    assert hc.spawn_fault("s1") is None
