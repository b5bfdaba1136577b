"""A flavor's local disks beside the root disk: the ephemeral disk and the swap disk.

Both are sparse raw files in the instance directory (so ``destroy`` removes them with
the directory), made at spawn before the domain is defined and plugged as the next
virtio disks after the root disk (``vdb`` then ``vdc``; swap is ``vdb`` when the flavor
has no ephemeral disk). Like Nova they are made whether or not the server boots from a
volume (Nova only drops the image-backed root disk then). Raw, not qcow2: the file
system is written straight into the sparse file, so only the blocks ``mkfs``/``mkswap``
touch take room, and no conversion step or backing chain is needed; these disks are
never snapshotted (a snapshot is the root disk only). Each file is formatted under a
``.part`` name and renamed, so a crash leaves a complete disk or a leftover the next
``prepare_disks`` removes.
"""

from __future__ import annotations

import os
from pathlib import Path

from stratus.agent.compute.virt.base import InstanceSpec, VirtError
from stratus.agent.runner import CommandError, Runner

EPHEMERAL = "disk.eph0"
SWAP = "disk.swap"
EPHEMERAL_LABEL = "ephemeral0"  # the file system label Nova gives it too
SWAP_LABEL = "swap"
GIB = 1024 ** 3
MIB = 1024 ** 2


def wanted(spec: InstanceSpec) -> list[tuple[str, str, int]]:
    """(file name, virtio target dev, size in bytes) of the spec's local disks, in the
    order they are plugged after ``vda``."""
    if spec.ephemeral_gb < 0 or spec.swap_mb < 0:
        raise VirtError(f"flavor ephemeral {spec.ephemeral_gb} GiB / swap {spec.swap_mb} MiB "
                        "is negative; both must be 0 or more", temporary=False)
    disks: list[tuple[str, int]] = []
    if spec.ephemeral_gb:
        disks.append((EPHEMERAL, spec.ephemeral_gb * GIB))
    if spec.swap_mb:
        disks.append((SWAP, spec.swap_mb * MIB))
    return [(name, "vd" + "bcdefghijklmnopqrstuvwxyz"[i], size)
            for i, (name, size) in enumerate(disks)]


def _format_argv(name: str, path: Path, mkfs: str, mkswap: str) -> list[str]:
    if name == EPHEMERAL:
        return [mkfs, "-F", "-q", "-L", EPHEMERAL_LABEL, str(path)]
    return [mkswap, "-L", SWAP_LABEL, str(path)]


def ensure(spec: InstanceSpec, directory: Path, runner: Runner, *,
           mkfs: str = "mkfs.ext4", mkswap: str = "mkswap") -> list[Path]:
    """Make the local disks the spec wants that are not in ``directory`` yet (an existing
    one is kept with its data: a reboot or redefine never reformats it). Returns the
    files made."""
    made = []
    for name, _dev, size in wanted(spec):
        dest = directory / name
        if dest.is_file():
            continue
        tmp = directory / (name + ".part")
        with open(tmp, "wb") as f:
            os.ftruncate(f.fileno(), size)  # sparse: no block is written yet
        try:
            runner.run(_format_argv(name, tmp, mkfs, mkswap))
        except CommandError as exc:
            tmp.unlink(missing_ok=True)
            raise VirtError(f"formatting {name} ({size} bytes) failed: "
                            f"{exc.stderr.strip() or exc}") from exc
        tmp.chmod(0o644)
        tmp.rename(dest)
        made.append(dest)
    return made
