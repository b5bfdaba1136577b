"""Volume I/O: sequential dd inside a guest on a local-file disk and on an iSCSI volume,
next to the same dd on the host against the volume's pool file.

Prints figures and ratios; asserts nothing (never run by the tests). Self-contained:
the tiny test guest (tests/images/build-tiny.sh) runs under QEMU (TCG here, see
../shared/MACHINE.md; ``--accel kvm`` on real hardware) with

- ``vda``: a qcow2 overlay on the image, grown to ``--disk-gib`` (the local-file root
  disk as the compute agent makes it; dd writes past the boot partition),
- ``vdb``: a raw file on the host (a volume used directly as a local file),
- ``vdc``: an iSCSI volume exported by this benchmark's own tgtd through the storage
  agent's ``Tgt`` (CHAP, one target, LUN 1) and read by QEMU's own iSCSI initiator, as
  the compute agent attaches volumes,
- a config drive whose user data runs ``dd`` on each disk (write ``conv=fsync``; read
  after dropping the guest's page cache) and prints the figures on the serial console.

Then the host runs the same dd against the iSCSI volume's pool file (write
``conv=fsync``; read ``iflag=direct`` so the host's page cache does not answer). TCG
makes in-guest figures CPU-bound on this machine: read the ratios with that in mind.
Host objects carry ``zvl``: the work dir ``/tmp/zvl-bench-*``, the target
``iqn.2010-10.org.stratus:zvl-bench``; tgtd and QEMU are stopped by their pids.

    .venv/bin/python benchmarks/volume_io.py [--mib 256] [--accel tcg]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stratus.agent.runner import Runner
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.contracts.volume import ExportSpec

REPO = Path(__file__).resolve().parents[1]
IQN_PREFIX = "iqn.2010-10.org.stratus:zvl-bench"
INITIATOR = "iqn.2010-10.org.stratus:zvl-bench-guest"
DD = re.compile(r"(\d+) bytes .*copied, ([\d.]+) s")
GUEST_SKIP_MIB = 64  # vda's first MiB hold the tiny image's boot partition


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def dd_rate(text: str) -> float | None:
    """MB/s (10**6 bytes) from a dd summary line."""
    found = DD.search(text)
    if not found or float(found.group(2)) <= 0:
        return None
    return int(found.group(1)) / float(found.group(2)) / 1e6


def guest_script(mib: int) -> str:
    """The user data: dd on each disk, timed with /proc/uptime (busybox dd prints no
    time), one ``ZVL-BENCH <dev> <op> <bytes> bytes copied, <seconds> s`` line each."""
    lines = ["#!/bin/sh", "now() { cut -d' ' -f1 /proc/uptime; }",
             "timed() { t0=$(now); \"$@\" 2>/dev/null; t1=$(now); "
             "awk -v a=\"$t0\" -v b=\"$t1\" 'BEGIN { print b - a }'; }"]
    size = mib * 1024 * 1024
    for dev in ("vda", "vdb", "vdc"):
        skip = GUEST_SKIP_MIB if dev == "vda" else 0
        lines += [
            "sync; echo 3 > /proc/sys/vm/drop_caches",
            f"echo \"ZVL-BENCH {dev} write {size} bytes copied, $(timed dd if=/dev/zero "
            f"of=/dev/{dev} bs=1M count={mib} seek={skip} conv=fsync) s\"",
            "sync; echo 3 > /proc/sys/vm/drop_caches",
            f"echo \"ZVL-BENCH {dev} read {size} bytes copied, $(timed dd if=/dev/{dev} "
            f"of=/dev/null bs=1M count={mib} skip={skip}) s\"",
        ]
    lines += ["echo ZVL-BENCH done", "poweroff -f"]
    return "\n".join(lines) + "\n"


def config_drive(work: Path, script: str) -> Path:
    tree = work / "cd" / "openstack" / "latest"
    tree.mkdir(parents=True)
    (tree / "meta_data.json").write_text('{"uuid": "zvl-bench", "hostname": "zvl-bench"}')
    (tree / "user_data").write_text(script)
    image = work / "config.vfat"
    run("mkfs.vfat", "-n", "config-2", "-C", str(image), "4096")
    run("mcopy", "-s", "-i", str(image), str(work / "cd" / "openstack"), "::")
    return image


def host_dd(path: Path, mib: int) -> tuple[float | None, float | None]:
    w = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                        "conv=notrunc,fsync"], capture_output=True, text=True)
    r = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M", f"count={mib}",
                        "iflag=direct"], capture_output=True, text=True)
    return dd_rate(w.stderr), dd_rate(r.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB written and read per disk")
    ap.add_argument("--disk-gib", type=int, default=1)
    ap.add_argument("--accel", choices=["tcg", "kvm"], default="tcg")
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()
    if args.mib + GUEST_SKIP_MIB > args.disk_gib * 1024:
        ap.error("--mib does not fit the disks")

    # a SIGTERM (timeout, ^C from a wrapper) still stops tgtd and QEMU
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    image = Path(subprocess.run(["bash", str(REPO / "tests/images/build-tiny.sh")],
                                check=True, capture_output=True, text=True)
                 .stdout.strip().splitlines()[-1])
    work = Path(tempfile.mkdtemp(prefix="zvl-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = work / "root.qcow2"
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2",
            str(root), f"{args.disk_gib}G")
        local = work / "local.raw"
        run("qemu-img", "create", "-q", "-f", "raw", str(local), f"{args.disk_gib}G")
        pool = work / "zvl-volume-bench.raw"
        run("qemu-img", "create", "-q", "-f", "raw", str(pool), f"{args.disk_gib}G")

        control, portal = 2000 + (os.getpid() + 13) % 20000, free_port()
        tgtd_log = open(work / "tgtd.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(
            ["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{portal}"],
            stdout=tgtd_log, stderr=tgtd_log, start_new_session=True))
        deadline = time.monotonic() + 20
        while subprocess.run(["tgtadm", "-C", str(control), "--op", "show", "--mode", "sys"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("tgtd did not answer on its control port")
            time.sleep(0.1)
        tgt = Tgt(Runner(timeout=30), IQN_PREFIX, AccountJournal(work / "accounts.json"),
                  control_port=control)
        password = os.urandom(8).hex()
        export = ExportSpec("bench", "bench", f"{IQN_PREFIX}:bench", "zvlbench", password,
                            1, INITIATOR)
        tgt.ensure(export, str(pool), tgt.targets(), tgt.accounts())

        console = work / "console.log"
        cd = config_drive(work, guest_script(args.mib))
        iscsi = (f"driver=iscsi,transport=tcp,portal=127.0.0.1:{portal},"
                 f"target={IQN_PREFIX}:bench,lun=1,user=zvlbench,password-secret=sec0,"
                 f"initiator-name={INITIATOR},node-name=vol")
        qemu = ["qemu-system-x86_64", "-M", "pc", "-accel", args.accel, "-cpu", "max",
                "-m", "256", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", f"file:{console}",
                "-object", f"secret,id=sec0,data={password}",
                # every disk a -device in this order (vda..vdd), booting from vda
                "-drive", f"file={root},format=qcow2,if=none,id=root,cache=none",
                "-device", "virtio-blk-pci,drive=root,bootindex=0",
                "-drive", f"file={local},format=raw,if=none,id=local,cache=none",
                "-device", "virtio-blk-pci,drive=local",
                "-blockdev", iscsi, "-device", "virtio-blk-pci,drive=vol",
                "-drive", f"file={cd},format=raw,if=none,id=cd,readonly=on",
                "-device", "virtio-blk-pci,drive=cd"]
        started = time.monotonic()
        qemu_log = open(work / "qemu.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(qemu, stdout=qemu_log, stderr=qemu_log,
                                      start_new_session=True))
        while "ZVL-BENCH done" not in (console.read_text(errors="replace")
                                       if console.exists() else ""):
            if procs[-1].poll() is not None or time.monotonic() - started > args.timeout:
                raise SystemExit("the guest did not finish; its console:\n"
                                 + (console.read_text(errors="replace")[-3000:]
                                    if console.exists() else "(none)")
                                 + (work / "qemu.log").read_text(errors="replace")[-2000:])
            time.sleep(1)
        text = console.read_text(errors="replace")
        for line in re.findall(r"ZVL-BENCH vd.*", text):
            print(f"  guest: {line.strip()}")
        guest: dict[tuple[str, str], float | None] = {}
        for dev, op, rest in re.findall(r"ZVL-BENCH (vd[abc]) (write|read) (.*)", text):
            guest[(dev, op)] = dd_rate(rest)
        host_w, host_r = host_dd(pool, args.mib)

        def fmt(v: float | None) -> str:
            return f"{v:8.1f}" if v is not None else "       -"

        def ratio(a: float | None, b: float | None) -> str:
            return f"{a / b:6.2f}" if a and b else "     -"

        print(f"sequential dd, {args.mib} MiB, bs=1M, guest under {args.accel} "
              f"(MB/s = 10^6 bytes/s)")
        print(f"{'where':48} {'write':>8} {'read':>8}")
        rows = [
            ("guest vda: local qcow2 overlay (root disk)", guest.get(("vda", "write")),
             guest.get(("vda", "read"))),
            ("guest vdb: local raw file", guest.get(("vdb", "write")),
             guest.get(("vdb", "read"))),
            ("guest vdc: iSCSI volume (tgt + QEMU initiator)", guest.get(("vdc", "write")),
             guest.get(("vdc", "read"))),
            ("host: the iSCSI volume's pool file", host_w, host_r),
        ]
        for name, w, r in rows:
            print(f"{name:48} {fmt(w)} {fmt(r)}")
        iw, ir = rows[2][1], rows[2][2]
        print(f"iSCSI / local raw in the guest:  write {ratio(iw, rows[1][1])}  "
              f"read {ratio(ir, rows[1][2])}")
        print(f"iSCSI / local qcow2 in the guest: write {ratio(iw, rows[0][1])}  "
              f"read {ratio(ir, rows[0][2])}")
        print(f"iSCSI in the guest / host file:  write {ratio(iw, host_w)}  "
              f"read {ratio(ir, host_r)}")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
