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



def s9e_local(tmp_path: Path) -> tuple[LibvirtDriver, ScriptedRunner, list[tuple[str, int, int]]]:
    """A driver whose mkfs.ext4/mkswap record (argv[0], size, allocated blocks) of the file
    they format and write a marker into it."""
    driver, runner = make(tmp_path)
    formatted: list[tuple[str, int, int]] = []

    def fmt(argv: list[str]) -> str:
        st = Path(argv[-1]).stat()
        formatted.append((argv[0], st.st_size, st.st_blocks))
        with open(argv[-1], "r+b") as f:
            f.write(argv[0].encode())
        return ""
    runner.on(["mkfs.ext4"], fmt)
    runner.on(["mkswap"], fmt)
    runner.on(["qemu-img", "info"], json.dumps({"virtual-size": 1 << 20}))

    def create(argv: list[str]) -> str:
        Path(argv[-2]).write_bytes(b"qcow")
        return ""
    runner.on(["qemu-img", "create"], create)
    return driver, runner, formatted


def test_s9e_prepare_disks_makes_ephemeral_and_swap_once(tmp_path: Path) -> None:
    driver, runner, formatted = s9e_local(tmp_path)
    spec = InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2", ephemeral_gb=2, swap_mb=512)
    d = tmp_path / SID
    d.mkdir()
    (d / "disk.eph0.part").write_bytes(b"half")  # a crashed attempt
    driver.prepare_disks(spec)
    eph, swap = d / "disk.eph0", d / "disk.swap"
    assert [c for c in runner.calls if c[0] in ("mkfs.ext4", "mkswap")] == [
        ["mkfs.ext4", "-F", "-q", "-L", "ephemeral0", str(d / "disk.eph0.part")],
        ["mkswap", "-L", "swap", str(d / "disk.swap.part")]]
    # sparse files of the flavor's sizes when formatted (nothing allocated before mkfs)
    assert formatted == [("mkfs.ext4", 2 << 30, 0), ("mkswap", 512 << 20, 0)]
    assert eph.stat().st_size == 2 << 30 and swap.stat().st_size == 512 << 20
    assert eph.read_bytes()[:9] == b"mkfs.ext4"
    assert not list(d.glob("*.part"))
    # a second pass (reboot, redefine) keeps them: no reformat
    driver.prepare_disks(spec)
    assert len(formatted) == 2


def test_s9e_prepare_disks_without_ephemeral_or_swap_makes_none(tmp_path: Path) -> None:
    driver, _runner, formatted = s9e_local(tmp_path)
    driver.prepare_disks(InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2"))
    assert formatted == []
    assert sorted(p.name for p in (tmp_path / SID).iterdir()) == ["disk"]


def test_s9e_failed_mkfs_leaves_no_disk(tmp_path: Path) -> None:
    driver, runner, _formatted = s9e_local(tmp_path)
    runner.on(["mkfs.ext4"], fail("mkfs.ext4: No space left on device"))
    with pytest.raises(VirtError, match=r"disk\.eph0.*No space left"):
        driver.prepare_disks(InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2",
                                          ephemeral_gb=1))
    assert not (tmp_path / SID / "disk.eph0").exists()
    assert not list((tmp_path / SID).glob("*.part"))


def test_s9e_negative_sizes_are_refused(tmp_path: Path) -> None:
    driver, _runner, formatted = s9e_local(tmp_path)
    with pytest.raises(VirtError, match="negative") as err:
        driver.prepare_disks(InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2", swap_mb=-1))
    assert not err.value.temporary and formatted == []


@pytest.mark.parametrize(("eph", "swap", "expected"), [
    (1, 256, [("disk", "vda", "qcow2"), ("disk.eph0", "vdb", "raw"),
              ("disk.swap", "vdc", "raw")]),
    (0, 256, [("disk", "vda", "qcow2"), ("disk.swap", "vdb", "raw")]),
    (3, 0, [("disk", "vda", "qcow2"), ("disk.eph0", "vdb", "raw")]),
    (0, 0, [("disk", "vda", "qcow2")]),
])
def test_s9e_define_plugs_local_disks_after_the_root_disk(
        tmp_path: Path, eph: int, swap: int, expected: list[tuple[str, str, str]]) -> None:
    import xml.etree.ElementTree as ET
    driver, runner = make(tmp_path)
    (tmp_path / SID).mkdir()
    driver.define(InstanceSpec(SID, "x", 1, 64, 1, "/base", "qcow2", ephemeral_gb=eph,
                               swap_mb=swap))
    assert ["define", str(tmp_path / SID / "domain.xml")] in runner.virsh_calls()
    root = ET.fromstring((tmp_path / SID / "domain.xml").read_text())
    disks = root.findall("devices/disk[@device='disk']")
    got = []
    for el in disks:
        src, tgt, drv = el.find("source"), el.find("target"), el.find("driver")
        assert src is not None and tgt is not None and drv is not None
        assert tgt.get("bus") == "virtio"
        got.append((Path(str(src.get("file"))).name, str(tgt.get("dev")), str(drv.get("type"))))
        assert Path(str(src.get("file"))).parent == tmp_path / SID
    assert got == expected


def test_s9e_boot_from_volume_still_gets_the_local_disks(tmp_path: Path) -> None:
    """Nova skips only the image-backed root disk of a volume-booted server."""
    from stratus.agent.compute.virt.base import VolumeSpec
    driver, runner, formatted = s9e_local(tmp_path)
    vol = VolumeSpec("att", "vol", "vda", "iqn.2026-01.dev.stratus:v", 0, "192.0.2.1", 3260)
    driver.prepare_disks(InstanceSpec(SID, "x", 1, 64, 0, "", "raw", root_volume=vol,
                                      ephemeral_gb=1, swap_mb=64))
    assert not any(c[:1] == ["qemu-img"] for c in runner.calls)
    assert [f[0] for f in formatted] == ["mkfs.ext4", "mkswap"]
    assert sorted(p.name for p in (tmp_path / SID).iterdir()) == ["disk.eph0", "disk.swap"]
