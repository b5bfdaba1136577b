"""An in-use extend reaches a connected initiator: real tgtd, the storage agent's pass, and
a QEMU (no guest: ``-M none``) logged in to the export through its own iSCSI client.

The storage agent grows the file and makes the LUN again on the same target; the
initiator's session stays; QEMU's ``block_resize`` to the new size (what the compute
agent asks libvirt for, ``virsh blockresize``) re-reads the capacity; the data written
before the extend is read back through the same session, and the new end is writable.
Host objects carry this test's prefix ``zvl``: the work dir ``/tmp/zvl-*``, the pool
files ``zvl-…``, targets under ``iqn.2010-10.org.stratus:zvl-host``; tgtd and QEMU are
this test's processes, stopped by pid.
"""

from __future__ import annotations

import json
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
from stratus.agent.storage.reconcile import StorageReconciler
from stratus.agent.storage.tgt import AccountJournal, Tgt, parse_targets
from stratus.contracts.volume import ExportSpec, StorageHostState, VolumeSource, VolumeSpec

pytestmark = pytest.mark.integration

IQN_PREFIX = "iqn.2010-10.org.stratus:zvl-host"
INITIATOR = "iqn.2010-10.org.stratus:zvl-compute"
V1 = "e0000000-0000-4000-8000-000000000001"
A1 = "f0000000-0000-4000-8000-000000000001"
GIB = 1024 ** 3
PASSWORD = "zvl-secret-0123456789"

needs_tools = pytest.mark.skipif(
    not (shutil.which("tgtd") and shutil.which("qemu-system-x86_64")
         and Path("/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so").exists()),
    reason="needs tgt, qemu-system-x86 and qemu-block-extra (scripts/install-test-deps.sh)")


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


class Proc:
    """A process of this test, killed by its pid."""

    def __init__(self, argv: list[str], log: Path):
        self.log = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()


class Qmp:
    """A minimal QMP client on a unix socket."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rw")
        self.file.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name: str, **args: Any) -> Any:
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "event" not in reply:
                if "error" in reply:
                    raise AssertionError(f"{name}: {reply['error']}")
                return reply["return"]

    def size(self) -> int:
        nodes = self.cmd("query-named-block-nodes")
        return int(next(n for n in nodes if n["node-name"] == "vol")["image"]["virtual-size"])

    def io(self, command: str) -> None:
        """A qemu-io command on the node (its output goes to QEMU's stdout: the log)."""
        out = str(self.cmd("human-monitor-command",
                           **{"command-line": f"qemu-io vol \"{command}\""}))
        assert not out.strip(), out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="zvl-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_tools
def test_in_use_extend_reaches_a_connected_qemu(workdir: Path) -> None:
    control, portal = 2000 + (os.getpid() + 7) % 20000, _free_port()
    tgtd = Proc(["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{portal}"],
                workdir / "tgtd.log")
    qemu: Proc | None = None
    qmp: Qmp | None = None
    try:
        _wait("tgtd", lambda: subprocess.run(
            ["tgtadm", "-C", str(control), "--op", "show", "--mode", "sys"],
            capture_output=True).returncode == 0)
        pool = Pool(workdir / "pool", "zvl", Runner(timeout=120))
        tgt = Tgt(Runner(timeout=30), IQN_PREFIX,
                  AccountJournal(workdir / "pool" / "zvl-tgt-accounts.json"),
                  control_port=control)
        rec = StorageReconciler(pool, tgt, images=None, workers=1,  # type: ignore[arg-type]
                                retry_interval=0.0)
        export = ExportSpec(A1, V1, f"{IQN_PREFIX}:{A1}", f"zvl{A1[:9]}", PASSWORD, 1,
                            INITIATOR)

        def state(gen: int, size: int) -> StorageHostState:
            return StorageHostState(gen, volumes=[VolumeSpec(V1, size, "raw",
                                                             VolumeSource("blank", None))],
                                    exports=[export])
        rec.reconcile(state(1, 1))
        rec.wait_jobs()
        report = rec.reconcile(state(1, 1))
        assert [(e.attachment_id, e.state) for e in report.exports] == [(A1, "ready")]

        # QEMU logs in with CHAP, as the compute agent's domain would.
        sock = workdir / "qmp.sock"
        blockdev = json.dumps({
            "driver": "iscsi", "node-name": "vol", "transport": "tcp",
            "portal": f"127.0.0.1:{portal}", "target": f"{IQN_PREFIX}:{A1}", "lun": 1,
            "user": export.auth_username, "password-secret": "sec0",
            "initiator-name": INITIATOR})
        qemu = Proc(["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                     "-object", f"secret,id=sec0,data={PASSWORD}", "-blockdev", blockdev,
                     "-qmp", f"unix:{sock},server=on,wait=off"], workdir / "qemu.log")
        _wait("QEMU's QMP socket", sock.exists)
        qmp = Qmp(sock)
        assert qmp.size() == GIB
        qmp.io("write -P 0x5a 1020M 1M")

        # the extend: the file grows, the LUN is made again, the session stays
        report = rec.reconcile(state(2, 2))
        assert [(v.id, v.size_gb) for v in report.volumes] == [(V1, 2)]
        assert [e.state for e in report.exports] == ["ready"]
        target = parse_targets(tgt.adm("--op", "show", "--mode", "target"))[0]
        assert target.sizes[1] == 2 * GIB // 1_000_000
        assert qmp.size() == GIB  # QEMU has not asked yet
        qmp.cmd("block_resize", **{"node-name": "vol", "size": 2 * GIB})
        assert qmp.size() == 2 * GIB
        qmp.io("read -P 0x5a 1020M 1M")
        qmp.io("write -P 0xa5 2047M 1M")
        qmp.io("read -P 0xa5 2047M 1M")
        log = _wait("qemu-io's output", lambda: (lambda t: t if t.count("read 1048576/")
                                                    == 2 else None)(
            (workdir / "qemu.log").read_text(errors="replace")), 10)
        assert "verification failed" not in log and "error" not in log.lower(), log
        with open(pool.volume_path(V1, "raw"), "rb") as fh:
            fh.seek(2047 * 2**20)
            assert fh.read(2**20) == b"\xa5" * 2**20
        # a second pass changes nothing (the LUN is its file's size now)
        before = tgt.adm("--op", "show", "--mode", "target")
        rec.reconcile(state(2, 2))
        assert tgt.adm("--op", "show", "--mode", "target") == before
        rec.shutdown()
    finally:
        if qmp is not None:
            qmp.close()
        if qemu is not None:
            qemu.stop()
        tgtd.stop()
