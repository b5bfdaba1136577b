"""Interface hot-plug and resize with REAL libvirt and qemu (TCG, the tiny guest).

The libvirt driver boots the tiny guest as domain ``zrs-<id>``; once its kernel runs init
(ACPI PCI hotplug ready), a port's tap is made and its interface (the boot's
``<interface>``) attached: it is in the live domain and in its definition, and attaching
again changes nothing; detaching takes it out of both (the guest releases it) and deletes
the tap. Then the driver's resize steps: the guest is stopped, its disk kept aside and
grown (``qemu-img``), the domain redefined with more memory and vcpus and started (libvirt
shows them), and the kept disk put back (a revert) at its old size. Host objects carry
``zrs``: the domain ``zrs-<id>``, taps ``zrs-tp…``, files under ``/tmp/zrs-*``; all are
removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import SystemLibvirt
from stratus.agent.compute.virt.base import RUNNING, InstanceSpec, PortSpec
from stratus.agent.compute.virt.libvirt import LibvirtDriver
from stratus.agent.ip_lib import IpLib
from stratus.agent.runner import Runner

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
URI = "qemu:///system"
PREFIX = "zrs-"
GIB = 1024 ** 3


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True)


def our_taps() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return re.findall(r"^\d+: (zrs-tp[^:@ ]*)", out, re.M)


def cleanup_host() -> None:
    for name in virsh("list", "--all", "--name").stdout.split():
        if name.startswith(PREFIX):
            virsh("destroy", name)
            virsh("undefine", "--managed-save", "--nvram", name)
    for tap in our_taps():
        subprocess.run(["ip", "link", "delete", tap], capture_output=True)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def host() -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirt, taps)")
    for tool in ("virsh", "qemu-img", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    kvm = Path("/dev/kvm")
    if kvm.exists():
        shutil.chown(kvm, group="kvm")
        kvm.chmod(0o660)
    # the libvirtd started here (when none answered) is stopped at the end: it outlived
    # the whole test run before
    libvirt = SystemLibvirt()
    libvirt.ensure()
    work = Path(tempfile.mkdtemp(prefix="zrs-"))
    try:
        built = subprocess.run(["bash", str(REPO / "tests/images/build-tiny.sh")],
                               capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr[-2000:]
        work.chmod(0o755)  # qemu runs as libvirt-qemu
        cleanup_host()
        yield {"work": work, "image": REPO / "tests/images/cache/tiny.qcow2"}
    finally:
        cleanup_host()
        shutil.rmtree(work, ignore_errors=True)
        libvirt.stop()


def interfaces(domain: str, inactive: bool = False) -> str:
    return virsh("domiflist", *(["--inactive"] if inactive else []), domain).stdout


def test_hot_plug_an_interface_and_resize_a_real_domain(host: dict[str, Any]) -> None:
    work: Path = host["work"]
    sid = str(uuid.uuid4())
    runner = Runner(timeout=120)
    driver = LibvirtDriver(runner, IpLib(runner), str(work / "instances"),
                           domain_prefix=PREFIX, virt_type="qemu", poll_interval=0.2)
    domain = f"{PREFIX}{sid}"
    spec = InstanceSpec(sid, "zrs-guest", 1, 128, 1, str(host["image"]), "qcow2")
    try:
        driver.prepare_disks(spec)
        driver.define(spec)
        driver.power_on(sid)
        console = work / "instances" / sid / "console.log"
        wait_for(lambda: console.exists() and b"Run /init" in console.read_bytes(), 240,
                 "the tiny guest's kernel to run init")

        # --- hot-plug ---------------------------------------------------------------------
        port = PortSpec(str(uuid.uuid4()), "fa:16:3e:5a:00:01", 1450,
                        f"zrs-tp{uuid.uuid4().hex[:8]}")
        driver.plug_vifs(InstanceSpec(sid, "zrs-guest", 1, 1, 0, "", "", ports=[port]))
        driver.attach_interface(sid, port)
        assert port.device in interfaces(domain) and port.mac_address in interfaces(domain)
        assert port.device in interfaces(domain, inactive=True)
        assert driver.plugged_interfaces(sid) == {port.device}
        driver.attach_interface(sid, port)  # again: nothing changes
        assert interfaces(domain).count(port.device) == 1
        driver.detach_interface(sid, port.device)
        assert port.device not in interfaces(domain)
        assert port.device not in interfaces(domain, inactive=True)
        assert port.device not in our_taps()

        # --- resize, then revert ----------------------------------------------------------
        disk = work / "instances" / sid / "disk"

        def virtual_size() -> int:
            out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)],
                                 capture_output=True, text=True, check=True).stdout
            return int(json.loads(out)["virtual-size"])

        before = virtual_size()
        driver.power_off(sid, 0)
        driver.keep_disk_copy(sid)
        assert driver.has_disk_copy(sid)
        assert driver.grow_disk(sid, 2) and virtual_size() == 2 * GIB
        assert not driver.grow_disk(sid, 1)  # never shrinks
        bigger = InstanceSpec(sid, "zrs-guest", 2, 192, 2, str(host["image"]), "qcow2")
        driver.define(bigger)
        driver.power_on(sid)
        info = virsh("dominfo", domain).stdout
        assert re.search(r"CPU\(s\):\s+2", info) and re.search(r"Max memory:\s+196608", info), \
            info
        assert driver.info(sid) is not None and driver.info(sid).power_state == RUNNING
        driver.power_off(sid, 0)
        assert driver.restore_disk_copy(sid) and virtual_size() == before
        assert not driver.has_disk_copy(sid)
        driver.define(spec)
        driver.power_on(sid)
        assert re.search(r"Max memory:\s+131072", virsh("dominfo", domain).stdout)
    finally:
        driver.destroy(sid, [])
    assert domain not in virsh("list", "--all", "--name").stdout
    assert not our_taps()
