"""Boot times through stratus-compute-agent next to a bare ``virsh create``.

Runs the agent (its console script, real libvirt, TCG) against the fake compute and
image APIs of tests/integration/test_compute_agent_libvirt.py and the tiny guest image, and
prints, per boot:

* assignment visible -> ACTIVE reported (first boot: includes the image download;
  then from the cache),
* assignment visible -> the guest's ``metadata fetched from config-drive`` marker in
  its console log,
* a bare ``virsh create`` of the same domain XML on a fresh overlay of the same base
  (and a copy of the same config drive) -> the same marker.

Root, libvirtd running (``make test-deps`` installs the host packages); host objects
carry the ``scag`` prefix and are removed. Figures, not pass/fail.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/compute_boot.py [--runs 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_compute_agent_libvirt import MARKER, PREFIX, Lab, cleanup_host, virsh

REPO = Path(__file__).resolve().parents[1]


def wait_marker(path: Path, since: int = 0, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = ""
        if len(MARKER.findall(text)) > since:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"no marker in {path}")


def agent_boot(lab: Lab) -> tuple[float, float, str]:
    ctl = lab.ctl
    sid = str(uuid.uuid4())
    n = len(ctl.reports)
    t0 = time.monotonic()
    ctl.assign(ctl.server_doc(sid, "scag" + sid[:7] + "-port"))
    ctl.wait_report(sid, lambda b: b.get("vm_state") == "active", since=n, timeout=300)
    t_active = time.monotonic()
    t_marker = wait_marker(lab.instances / sid / "console.log")
    return t_active - t0, t_marker - t0, sid


def agent_delete(lab: Lab, sid: str) -> None:
    n = len(lab.ctl.reports)
    lab.ctl.update(sid, delete=True, task_state="deleting")
    lab.ctl.wait_report(sid, lambda b: b.get("deleted") is True, since=n)


def bare_boot(lab: Lab, template: str, base: Path, config_drive: Path) -> float:
    """``virsh create`` of the agent's XML on a fresh overlay and config drive copy."""
    sid = str(uuid.uuid4())
    d = lab.dir / f"bare-{sid}"
    d.mkdir()
    d.chmod(0o755)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(d / "disk"), "1G"], check=True)
    shutil.copy(config_drive, d / "disk.config")
    root = ET.fromstring(template)
    root.find("name").text = PREFIX + "bare-" + sid[:8]  # type: ignore[union-attr]
    root.find("uuid").text = sid  # type: ignore[union-attr]
    for entry in root.findall("sysinfo/system/entry"):
        if entry.get("name") in ("uuid", "serial"):
            entry.text = sid
    devices = root.find("devices")
    assert devices is not None
    for disk in devices.findall("disk"):
        src = disk.find("source")
        assert src is not None
        src.set("file", str(d / ("disk" if disk.get("device") == "disk" else "disk.config")))
    for nic in devices.findall("interface"):
        devices.remove(nic)  # no tap needed for the guest to read its config drive
    for el in devices.findall("*/source[@path]"):
        el.set("path", str(d / "console.log"))
    (d / "domain.xml").write_text(ET.tostring(root, encoding="unicode"))
    t0 = time.monotonic()
    created = virsh("create", str(d / "domain.xml"))
    if created.returncode != 0:
        raise RuntimeError(created.stderr)
    t = wait_marker(d / "console.log") - t0
    virsh("destroy", PREFIX + "bare-" + sid[:8])
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2, help="cached boots and bare boots")
    args = parser.parse_args()
    built = subprocess.run(["bash", str(REPO / "tests/images/build-tiny.sh")],
                           capture_output=True, text=True, check=True)
    image = Path(built.stdout.strip().splitlines()[-1])
    cleanup_host()
    lab = Lab(image)
    try:
        lab.start_agent()
        first_active, first_marker, sid = agent_boot(lab)
        agent_delete(lab, sid)
        cached: list[tuple[float, float]] = []
        bare: list[float] = []
        for _ in range(args.runs):
            active, marker, sid = agent_boot(lab)
            cached.append((active, marker))
            template = (lab.instances / sid / "domain.xml").read_text()
            keep = lab.dir / "config-drive-copy"
            shutil.copy(lab.instances / sid / "disk.config", keep)
            base = next((lab.instances / "_base").glob("[0-9a-f]*"))
            agent_delete(lab, sid)
            bare.append(bare_boot(lab, template, base, keep))
        print(f"image: {image.name}, {image.stat().st_size / 2**20:.1f} MiB, TCG")
        print(f"{'':44} {'-> ACTIVE':>10} {'-> marker':>10}")
        print(f"{'agent, first boot (image download)':44} {first_active:9.2f}s "
              f"{first_marker:9.2f}s")
        for i, (a, m) in enumerate(cached, 1):
            print(f"{f'agent, cached image, run {i}':44} {a:9.2f}s {m:9.2f}s")
        for i, b in enumerate(bare, 1):
            print(f"{f'bare virsh create, run {i}':44} {'':>10} {b:9.2f}s")
        if cached and bare:
            overhead = statistics.median(m for _, m in cached) - statistics.median(bare)
            print(f"agent overhead to the marker (median): {overhead:+.2f}s")
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
