"""The config drive: an ISO9660 image labelled ``config-2`` (Rock Ridge + Joliet)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath

from stratus.agent.compute.virt.base import VirtError
from stratus.agent.runner import Runner

LABEL = "config-2"


def check_paths(files: dict[str, bytes]) -> None:
    """Refuse absolute paths and ``..``: the files come from the API's document."""
    for name in files:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise VirtError(f"config drive file name {name!r} is not a relative path",
                            temporary=False)


def write_tree(files: dict[str, bytes], root: Path) -> None:
    check_paths(files)
    for name, data in sorted(files.items()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def build(files: dict[str, bytes], dest: Path, runner: Runner,
          genisoimage: str = "genisoimage") -> None:
    """Write the ISO to ``dest`` (through a temporary name, so it is complete or absent)."""
    tmp = dest.with_name(dest.name + ".part")
    with tempfile.TemporaryDirectory(prefix=".cd-", dir=dest.parent) as tree:
        write_tree(files, Path(tree))
        runner.run([genisoimage, "-o", str(tmp), "-quiet", "-R", "-J", "-V", LABEL,
                    "-input-charset", "utf-8", "-publisher", "Stratus", tree])
    tmp.chmod(0o644)
    tmp.rename(dest)


def remove_tmp(directory: Path) -> None:
    for leftover in directory.glob(".cd-*"):
        shutil.rmtree(leftover, ignore_errors=True)
