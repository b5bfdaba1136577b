"""Volume format: raw against qcow2, through the export (tgt, QEMU's iSCSI initiator).

Prints figures; asserts nothing. For each format it makes a blank volume through the
storage agent's pass (a qcow2 volume is exported through the raw view of a
``qemu-storage-daemon``; a raw one directly), exports it from this benchmark's own
tgtd (its control port and portal on 127.0.0.1, stopped by pid), and runs
``qemu-img bench`` over ``iscsi://`` (sequential 1 MiB writes, then reads, queue depth
4), next to the same bench on the host against the pool file. Then the pool file's
size on disk after the writes. Everything lives under a temporary ``zvb-`` directory,
removed at the end. Run from the repository root in the project's virtualenv:

    .venv/bin/python benchmarks/volume_export.py [--mib 512]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.rawview import RawViews
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.contracts.volume import ExportSpec, StorageHostState, VolumeSource, VolumeSpec

IQN = "iqn.2010-10.org.stratus:zvb-host"
PASSWORD = "zvb-bench-0123456789"


def bench(args: list[str], mib: int, write: bool) -> float:
    """MB/s of ``qemu-img bench`` (sequential 1 MiB requests, O_DIRECT: no host page cache
    on the initiator's side or for the pool file)."""
    argv = ["qemu-img", "bench", "-t", "none", "-c", str(mib), "-s", "1M", "-d", "4",
            "-S", "1M"]
    if write:
        argv.append("-w")
    start = time.monotonic()
    subprocess.run(argv + args, check=True, capture_output=True, text=True)
    return mib * (1 << 20) / 1e6 / (time.monotonic() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512)
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zvb-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        portal = int(s.getsockname()[1])
    control = 2000 + (os.getpid() + 23) % 20000
    log = open(work / "tgtd.log", "wb")  # noqa: SIM115
    tgtd = subprocess.Popen(["tgtd", "-f", "-C", str(control), "--iscsi",
                             f"portal=127.0.0.1:{portal}"], stdout=log, stderr=log,
                            start_new_session=True)
    views = RawViews(work / "pool", "zvb", Runner(timeout=60))
    try:
        while subprocess.run(["tgtadm", "-C", str(control), "--op", "show", "--mode", "sys"],
                             capture_output=True).returncode:
            time.sleep(0.1)
        pool = Pool(work / "pool", "zvb", Runner(timeout=600), views=views)
        tgt = Tgt(Runner(timeout=30), IQN, AccountJournal(work / "pool" / "zvb-acc.json"),
                  control_port=control)
        rec = StorageReconciler(pool, tgt, images=None, workers=1)
        print(f"{opts.mib} MiB sequential, 1 MiB requests, queue depth 4")
        print(f"{'format':8} {'iSCSI write':>12} {'iSCSI read':>11} {'host write':>11} "
              f"{'host read':>10} {'on disk':>9}")
        for n, fmt in enumerate(("raw", "qcow2"), 1):
            vid = f"f0000000-0000-4000-8000-00000000000{n}"
            aid = f"f1000000-0000-4000-8000-00000000000{n}"
            spec = ExportSpec(aid, vid, f"{IQN}:{aid}", f"zvb{n}", PASSWORD, 1, None)
            state = StorageHostState(n, volumes=[VolumeSpec(vid, 2, fmt,
                                                            VolumeSource("blank", None))],
                                     exports=[spec])
            rec.reconcile(state)
            rec.wait_jobs()
            rec.reconcile(state)
            # CHAP in the URL (libiscsi's user%password@): qemu-img bench has no --object
            iscsi = ["-f", "raw", f"iscsi://zvb{n}%{PASSWORD}@127.0.0.1:{portal}/{IQN}:{aid}/1"]
            w = bench(iscsi, opts.mib, True)
            r = bench(iscsi, opts.mib, False)
            rec.reconcile(StorageHostState(n, volumes=state.volumes))  # export gone
            path = pool.volume_path(vid, fmt)
            hw = bench(["-f", fmt, str(path)], opts.mib, True)
            hr = bench(["-f", fmt, str(path)], opts.mib, False)
            used = os.stat(path).st_blocks * 512 / (1 << 20)
            print(f"{fmt:8} {w:9.0f} MB/s {r:8.0f} MB/s {hw:8.0f} MB/s {hr:7.0f} MB/s "
                  f"{used:6.0f} MiB")
        rec.reconcile(StorageHostState(9))
        rec.shutdown()
        out = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True)
        print(re.sub(r"\n.*", "", out.stdout, flags=re.S))
    finally:
        for vid in views.present():
            views.remove(vid)
        tgtd.kill()
        tgtd.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
