"""qcow2 volumes exported over iSCSI: a REAL tgtd backed by the raw view a REAL
``qemu-storage-daemon`` serves over FUSE, with ``qemu-io`` as the initiator.

What is shown: data written through the export of a qcow2 volume is read back from
the qcow2 file itself (``qemu-io -f qcow2``) once the export is gone; the volume
is extended, snapshotted, cloned and uploaded while exported (all through the
view); a kill -9 of the daemon is repaired by the next pass (daemon started again,
LUN opened again, the data still there); a fresh agent (as after a kill -9 of the
agent) keeps the running daemon; removing the export stops the daemon, unmounts and
removes the view. Host objects carry this test's prefix ``zvl``: the work dir
``/tmp/zvl-*``, pool files ``zvl-…``, targets ``iqn.2010-10.org.stratus:zvl-q…``; tgtd
and the daemons are this test's, stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool
from stratus.agent.storage.rawview import RawViews
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt
from stratus.contracts.volume import (
    ExportSpec,
    SnapshotSpec,
    StorageHostState,
    UploadSpec,
    VolumeSource,
    VolumeSpec,
)

pytestmark = pytest.mark.integration

IQN_PREFIX = "iqn.2010-10.org.stratus:zvl-qhost"
INITIATOR = "iqn.2010-10.org.stratus:zvl-compute"
V1 = "e1000000-0000-4000-8000-000000000001"
V2 = "e1000000-0000-4000-8000-000000000002"
V3 = "e1000000-0000-4000-8000-000000000003"
S1 = "e2000000-0000-4000-8000-000000000001"
A1 = "e3000000-0000-4000-8000-000000000001"
IMG = "e4000000-0000-4000-8000-000000000001"
PASSWORD = "zvl-qcow2-0123456789"
MIB = 1 << 20

needs_tools = pytest.mark.skipif(
    not (shutil.which("tgtd") and shutil.which("qemu-io")
         and shutil.which("qemu-storage-daemon") and shutil.which("fusermount3")
         and os.path.exists("/dev/fuse")
         and Path("/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so").exists()),
    reason="needs tgt, qemu-block-extra, qemu-system-common (qemu-storage-daemon), fuse3 "
           "and /dev/fuse (scripts/install-test-deps.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Uploads:
    """The image API's side of an upload: two MiB of the file kept by image id (at 0 and
    at 1000 MiB)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, bytes]] = {}

    def fetch(self, image_id: str) -> Iterator[bytes]:
        raise AssertionError("no create from image here")

    def upload(self, image_id: str, path: str) -> None:
        with open(path, "rb") as fh:
            head = fh.read(MIB)
            fh.seek(1000 * MIB)
            self.data[image_id] = (head, fh.read(MIB))


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="zvl-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def qemu_io(portal: int, *cmds: str) -> str:
    opts = (f"driver=iscsi,transport=tcp,portal=127.0.0.1:{portal},"
            f"target={IQN_PREFIX}:{A1},lun=1,user=zvl-{A1[:8]},password-secret=sec0,"
            f"initiator-name={INITIATOR}")
    argv = ["qemu-io", "--object", f"secret,id=sec0,data={PASSWORD}", "--image-opts", opts]
    for c in cmds:
        argv += ["-c", c]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "fail" not in text.lower() \
        and "error" not in text.lower(), text
    return text


def converge(rec: StorageReconciler, state: StorageHostState):
    rec.reconcile(state)
    rec.wait_jobs()
    return rec.reconcile(state)


@needs_tools
def test_qcow2_volume_exported_through_its_raw_view(workdir: Path) -> None:
    control, portal = 2000 + (os.getpid() + 11) % 20000, _free_port()
    log = open(workdir / "tgtd.log", "wb")  # noqa: SIM115
    tgtd = subprocess.Popen(["tgtd", "-f", "-C", str(control), "--iscsi",
                             f"portal=127.0.0.1:{portal}"], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    pool_dir = workdir / "pool"
    views = RawViews(pool_dir, "zvl", Runner(timeout=60))
    try:
        _wait("tgtd", lambda: subprocess.run(
            ["tgtadm", "-C", str(control), "--op", "show", "--mode", "sys"],
            capture_output=True).returncode == 0)
        uploads = Uploads()

        def reconciler() -> StorageReconciler:
            pool = Pool(pool_dir, "zvl", Runner(timeout=120), views=views)
            tgt = Tgt(Runner(timeout=30), IQN_PREFIX,
                      AccountJournal(pool_dir / "zvl-tgt-accounts.json"),
                      control_port=control)
            return StorageReconciler(pool, tgt, uploads, workers=2, retry_interval=0.0)

        rec = reconciler()
        export = ExportSpec(A1, V1, f"{IQN_PREFIX}:{A1}", f"zvl-{A1[:8]}", PASSWORD, 1,
                            INITIATOR)
        v1 = VolumeSpec(V1, 1, "qcow2", VolumeSource("blank", None))
        report = converge(rec, StorageHostState(1, volumes=[v1], exports=[export]))
        assert [(e.attachment_id, e.state, e.fault) for e in report.exports] == [
            (A1, "ready", None)]
        qcow2 = rec.pool.volume_path(V1, "qcow2")
        view = views.view_path(V1)
        assert views.active(V1)
        first = views.daemons()[V1]
        assert [d.image for d in first] == [str(qcow2)]
        target = rec.exports.ours()[export.target_iqn]
        assert target.luns == {1: str(view)}

        # written through tgt, QEMU's initiator
        qemu_io(portal, "write -P 0x5a 0 1M", "write -P 0xa5 1000M 1M")

        # in-use extend: the qcow2 image grows through the daemon, the LUN is made again
        v1 = VolumeSpec(V1, 2, "qcow2", VolumeSource("blank", None))
        report = converge(rec, StorageHostState(2, volumes=[v1], exports=[export]))
        assert [(v.id, v.size_gb) for v in report.volumes] == [(V1, 2)]
        assert rec.exports.ours()[export.target_iqn].sizes[1] == 2 * (1 << 30) // 1_000_000
        qemu_io(portal, "write -P 0x3c 2047M 1M", "read -P 0x5a 0 1M")

        # snapshot, clones and an upload read the exported volume through its view
        state = StorageHostState(
            3, volumes=[v1, VolumeSpec(V2, 2, "raw", VolumeSource("snapshot", S1)),
                        VolumeSpec(V3, 3, "qcow2", VolumeSource("volume", V1))],
            snapshots=[SnapshotSpec(S1, V1)], exports=[export],
            uploads=[UploadSpec(V1, IMG, "raw")])
        converge(rec, state)
        report = converge(rec, state)
        assert {(v.id, v.size_gb, v.state) for v in report.volumes} == {
            (V1, 2, "ready"), (V2, 2, "ready"), (V3, 3, "ready")}
        assert [(u.image_id, u.state) for u in report.uploads] == [(IMG, "done")]
        assert uploads.data[IMG] == (b"\x5a" * MIB, b"\xa5" * MIB)
        for path, fmt in ((rec.pool.volume_path(V2, "raw"), "raw"),
                          (rec.pool.volume_path(V3, "qcow2"), "qcow2")):
            out = subprocess.run(["qemu-io", "-r", "-f", fmt, "-c", "read -P 0x5a 0 1M",
                                  "-c", "read -P 0x3c 2047M 1M", str(path)],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and "fail" not in out.stdout, out.stdout + out.stderr

        # a kill -9 of the daemon: the next pass starts it again and opens the LUN again
        os.kill(first[0].pid, signal.SIGKILL)
        _wait("the daemon's end", lambda: V1 not in views.daemons())
        assert not views.active(V1)
        report = rec.reconcile(state)
        assert [e.state for e in report.exports] == ["ready"]
        assert views.active(V1)
        qemu_io(portal, "read -P 0x5a 0 1M", "read -P 0xa5 1000M 1M")

        # a new agent (as after a kill -9 of the agent) keeps the running daemon
        rec.shutdown()
        running = views.daemons()[V1]
        rec = reconciler()
        rec.reconcile(state)
        assert views.daemons()[V1] == running

        # the export goes: the daemon stops, the view is unmounted and removed, and the
        # data written through iSCSI is in the qcow2 file
        report = converge(rec, StorageHostState(4, volumes=[v1]))
        assert not views.present() and not view.exists()
        assert not rec.exports.ours()
        info = subprocess.run(["qemu-img", "info", str(qcow2)], capture_output=True,
                              text=True, check=True).stdout
        assert "file format: qcow2" in info
        out = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 1M",
                              "-c", "read -P 0xa5 1000M 1M", "-c", "read -P 0x3c 2047M 1M",
                              str(qcow2)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "fail" not in out.stdout, out.stdout + out.stderr

        converge(rec, StorageHostState(5))
        assert not list(pool_dir.glob("zvl-volume-*")) and not list(
            pool_dir.glob("zvl-snapshot-*"))
        rec.shutdown()
    finally:
        for vid in views.present():
            views.remove(vid)
        tgtd.kill()
        tgtd.wait(timeout=10)
        log.close()
