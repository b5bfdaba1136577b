"""The raw views' bookkeeping: which daemons and mounts are this agent's (a fake /proc).

The daemons themselves run in tests/integration/test_volume_qcow2_export.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.agent.runner import Runner
from stratus.agent.storage.rawview import RawViews

pytestmark = pytest.mark.unit

V1 = "e1000000-0000-4000-8000-000000000001"


def _proc(root: Path, pid: int, argv: list[str], state: str = "S") -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "stat").write_text(f"{pid} (qemu-storage-da) {state} 1 2 3\n")


def _daemon_argv(pool: Path, prefix: str, vid: str, daemon: str = "qemu-storage-daemon"
                 ) -> list[str]:
    return [daemon, "--daemonize", "--blockdev",
            f"driver=file,node-name=file0,filename={pool}/{prefix}-volume-{vid}.qcow2",
            "--blockdev", "driver=qcow2,node-name=vol0,file=file0", "--export",
            f"type=fuse,id=view0,node-name=vol0,mountpoint={pool}/{prefix}-view-{vid}.raw,"
            "writable=on"]


def test_only_daemons_serving_a_view_of_this_pool_and_prefix_are_ours(tmp_path: Path):
    proc, pool = tmp_path / "proc", tmp_path / "pool"
    _proc(proc, 10, _daemon_argv(pool, "zvl", V1, "/usr/bin/qemu-storage-daemon"))
    _proc(proc, 11, _daemon_argv(pool, "other", V1))        # another deploy's prefix
    _proc(proc, 12, _daemon_argv(tmp_path / "elsewhere", "zvl", V1))  # another pool
    _proc(proc, 13, ["sleep", f"mountpoint={pool}/zvl-view-{V1}.raw"])  # not the daemon
    _proc(proc, 14, ["bash"])
    views = RawViews(pool, "zvl", Runner(), proc=proc)
    daemons = views.daemons()
    assert list(daemons) == [V1]
    assert [(d.pid, d.image) for d in daemons[V1]] == [
        (10, f"{pool}/zvl-volume-{V1}.qcow2")]
    assert views._alive(10) and not views._alive(99)
    _proc(proc, 15, ["x"], state="Z")
    assert not views._alive(15)


def test_mounts_are_fuse_mounts_on_view_paths(tmp_path: Path):
    proc, pool = tmp_path / "proc", tmp_path / "pool"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(
        f"46 27 0:40 / {pool}/zvl-view-{V1}.raw rw,nosuid - fuse /dev/fuse rw,user_id=0\n"
        f"47 27 0:41 / {pool}/zvl-view-x.raw rw - ext4 /dev/sda rw\n"
        f"48 27 0:42 / {pool}/other-view-y.raw rw - fuse /dev/fuse rw\n"
        "49 27 0:43 / /tmp/dir\\040with\\040blank rw - fuse /dev/fuse rw\n")
    views = RawViews(pool, "zvl", Runner(), proc=proc)
    assert views.mounts() == {V1}
    pool.mkdir()
    (pool / "zvl-view-e2.raw").touch()
    (pool / "zvl-volume-e3.qcow2").touch()
    assert views.present() == {V1, "e2"}
    assert not views.active(V1)  # a mount without its daemon is dead
    assert views.view_path(V1) == pool / f"zvl-view-{V1}.raw"
