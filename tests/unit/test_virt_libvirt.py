"""The libvirt driver's command sequences against a scripted runner (no libvirt)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.compute.virt.base import RUNNING, InstanceSpec, PortSpec, VirtError
from stratus.agent.compute.virt.domain_xml import build_domain, to_string
from stratus.agent.compute.virt.libvirt import LibvirtDriver
from stratus.agent.ip_lib import IpLib
from stratus.agent.runner import CommandError

pytestmark = pytest.mark.unit

SID = "3f0e4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b"
NAME = "scag-" + SID
Handler = Callable[[list[str]], str]


class ScriptedRunner:
    """Answers commands by their first words; records every argv."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.handlers: list[tuple[list[str], Handler]] = []

    def on(self, prefix: Sequence[str], handler: Handler | str) -> None:
        fn = handler if callable(handler) else (lambda _a, out=handler: out)
        self.handlers.insert(0, (list(prefix), fn))

    def run(self, argv: Sequence[str], check: bool = True, input: str | None = None,
            wrap: bool = True) -> str:
        argv = list(argv)
        self.calls.append(argv)
        words = [a for a in argv if a not in ("-q",)]
        if words[:1] == ["virsh"]:
            words = words[3:]  # virsh -c URI
        for prefix, fn in self.handlers:
            if words[:len(prefix)] == prefix:
                try:
                    return fn(words)
                except CommandError:
                    if check:
                        raise
                    return ""
        return ""

    def ok(self, argv: Sequence[str]) -> bool:
        return True

    def virsh_calls(self) -> list[list[str]]:
        return [c[4:] for c in self.calls if c[:1] == ["virsh"]]


def fail(msg: str) -> Handler:
    def fn(argv: list[str]) -> str:
        raise CommandError(argv, 1, msg)
    return fn


def dominfo(state: str, managed: str = "no") -> str:
    return f"Name: {NAME}\nState:          {state}\nManaged save:   {managed}\n"


def make(tmp_path: Path) -> tuple[LibvirtDriver, ScriptedRunner]:
    runner = ScriptedRunner()
    runner.on(["ip", "-j", "-d", "link", "show"], "[]")
    as_runner: Any = runner  # duck-typed stand-in for stratus.agent.runner.Runner
    driver = LibvirtDriver(as_runner, IpLib(as_runner), str(tmp_path), domain_prefix="scag-",
                           poll_interval=0)
    return driver, runner


def test_list_instances_keeps_only_our_domains(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    spec = InstanceSpec(SID, "x", 1, 64, 0, "", "qcow2")
    ours = to_string(build_domain(spec, domain_name=NAME, virt_type="qemu",
                                  disk_path=str(tmp_path / SID / "disk"),
                                  config_drive_path=None, console_path="c"))
    # Another deploy's domain with the same prefix and Stratus's metadata, its disk elsewhere.
    other_sid = SID[:-1] + "0"
    other = to_string(build_domain(InstanceSpec(other_sid, "x", 1, 64, 0, "", "qcow2"),
                                   domain_name="scag-" + other_sid, virt_type="qemu",
                                   disk_path=f"/elsewhere/instances/{other_sid}/disk",
                                   config_drive_path=None, console_path="c"))
    runner.on(["list"], f"{NAME}\nscag-foreign\ninstance-other\nscag-{other_sid}\n")
    runner.on(["dumpxml", NAME], ours)
    runner.on(["dumpxml", "scag-foreign"], "<domain><name>scag-foreign</name></domain>")
    runner.on(["dumpxml", "scag-" + other_sid], other)
    runner.on(["dominfo"], dominfo("running"))
    assert {k: v.power_state for k, v in driver.list_instances().items()} == {SID: RUNNING}
    driver.list_instances()
    dumps = [c for c in runner.virsh_calls() if c[0] == "dumpxml"]
    assert [c[1] for c in dumps].count(NAME) == 1  # metadata checked once per domain


def test_destroy_of_a_stopped_domain_and_its_taps(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    (tmp_path / SID).mkdir()
    (tmp_path / SID / "disk").write_bytes(b"x")
    links = [{"ifname": "tapaaa", "flags": ["UP"], "linkinfo": {"info_kind": "tun"}},
             {"ifname": "tapbbb", "flags": ["UP"], "linkinfo": {"info_kind": "veth"}}]
    runner.on(["ip", "-j", "-d", "link", "show"], json.dumps(links))
    runner.on(["dominfo"], dominfo("shut off"))
    runner.on(["dumpxml"], "<domain><devices><interface type='ethernet'>"
              "<target dev='tapaaa'/></interface></devices></domain>")
    runner.on(["destroy"], fail("error: Requested operation is not valid: domain is not running"))
    driver.destroy(SID, ["tapbbb"])
    assert ["undefine", "--managed-save", "--nvram", NAME] in runner.virsh_calls()
    deleted = [c for c in runner.calls if c[:3] == ["ip", "link", "delete"]]
    assert deleted == [["ip", "link", "delete", "dev", "tapaaa"]]  # never the veth
    assert not (tmp_path / SID).exists()


def test_destroy_of_nothing_is_fine(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    runner.on(["dominfo"], fail(f"error: failed to get domain '{NAME}'"))
    driver.destroy(SID, [])
    assert [c[0] for c in runner.virsh_calls()] == ["dominfo"]


def test_power_off_forces_after_the_timeout(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    runner.on(["dominfo"], dominfo("running"))  # the guest ignores ACPI
    driver.power_off(SID, timeout=0.01)
    verbs = [c[0] for c in runner.virsh_calls() if c[0] != "dominfo"]
    assert verbs == ["shutdown", "destroy"]


def test_soft_reboot_is_shutdown_then_start(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    states = iter([dominfo("running"), dominfo("running"), dominfo("shut off")])
    runner.on(["dominfo"], lambda _a: next(states, dominfo("shut off")))
    driver.reboot(SID, hard=False, timeout=5)
    verbs = [c[:2] for c in runner.virsh_calls() if c[0] != "dominfo"]
    assert verbs == [["shutdown", "--mode"], ["start", NAME]]


def test_suspended_domain_is_resumed_by_start(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    runner.on(["dominfo"], dominfo("shut off", managed="yes"))
    driver.power_on(SID)
    assert ["start", NAME] in runner.virsh_calls()


def test_prepare_disks_refuses_a_flavor_smaller_than_the_image(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    runner.on(["qemu-img", "info"], json.dumps({"virtual-size": 3 << 30}))
    spec = InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2")
    with pytest.raises(VirtError, match="smaller"):
        driver.prepare_disks(spec)
    assert not (tmp_path / SID / "disk").exists()


def test_prepare_disks_resizes_to_the_flavor(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    runner.on(["qemu-img", "info"], json.dumps({"virtual-size": 1 << 20}))

    def create(argv: list[str]) -> str:
        Path(argv[-2]).write_bytes(b"qcow")
        return ""
    runner.on(["qemu-img", "create"], create)
    (tmp_path / SID).mkdir()
    (tmp_path / SID / "disk.part").write_bytes(b"half")  # a crashed attempt
    driver.prepare_disks(InstanceSpec(SID, "x", 1, 64, 2, "/base", "raw"))
    create_call = next(c for c in runner.calls if c[:2] == ["qemu-img", "create"])
    assert create_call[-6:] == ["-b", "/base", "-F", "raw", str(tmp_path / SID / "disk.part"),
                                str(2 << 30)]
    assert (tmp_path / SID / "disk").read_bytes() == b"qcow"
    assert not (tmp_path / SID / "disk.part").exists()


def test_plug_vifs_creates_missing_taps_only(tmp_path: Path) -> None:
    driver, runner = make(tmp_path)
    existing = [{"ifname": "tapold", "mtu": 1450, "flags": ["UP"],
                 "linkinfo": {"info_kind": "tun"}}]

    def show(a: list[str]) -> str:
        if a[-1] == "show":
            return json.dumps(existing)
        return json.dumps([x for x in existing if x["ifname"] == a[-1]])

    def add(a: list[str]) -> str:
        existing.append({"ifname": a[4], "mtu": 1500, "flags": [],
                         "linkinfo": {"info_kind": "tun"}})
        return ""
    runner.on(["ip", "-j", "-d", "link", "show"], show)
    runner.on(["ip", "tuntap", "add"], add)
    spec = InstanceSpec(SID, "x", 1, 64, 0, "", "qcow2", ports=[
        PortSpec("p1", "fa:16:3e:00:00:01", 1450, "tapold"),
        PortSpec("p2", "fa:16:3e:00:00:02", 1400, "tapnew")])
    driver.plug_vifs(spec)
    changes = [c for c in runner.calls if c[:2] in (["ip", "tuntap"], ["ip", "link"])
               and "show" not in c]
    assert changes == [["ip", "tuntap", "add", "dev", "tapnew", "mode", "tap"],
                       ["ip", "link", "set", "dev", "tapnew", "mtu", "1400", "up"]]

