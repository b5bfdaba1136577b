"""The storage agent's pool: volume and snapshot files in one directory, made with ``qemu-img``.

File names carry the agent's prefix (a setting), and nothing else in the
directory is ever touched:

* ``<prefix>-volume-<id>.<format>`` (``raw`` or ``qcow2``),
* ``<prefix>-snapshot-<id>.qcow2`` (a full, self-contained copy of the volume),
* ``<prefix>-….part``: work in progress. Every file is made under a ``.part`` name
  and renamed when complete, so a kill -9 leaves only ``.part`` files, which the
  next pass removes (:meth:`Pool.remove_partials`).

While a qcow2 volume is exported, its file is held (and locked) by the
``qemu-storage-daemon`` serving its raw view (:mod:`stratus.agent.storage.rawview`):
reads of it (a snapshot, a clone, an upload) then go through the view as raw data, and a
grow truncates the view, which grows the qcow2 image through the daemon.

Image data for a create-from-image is downloaded into a ``.part`` file, checked
with ``qemu-img info`` (no backing or external data file allowed) and converted
with ``qemu-img convert`` into the volume's format; an upload to an image converts
the volume into a ``.part`` file in the image's disk format and streams it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stratus.agent.runner import CommandError, Runner
from stratus.agent.storage.rawview import RawViews

LOG = logging.getLogger(__name__)

GIB = 1 << 30
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
FORMATS = ("raw", "qcow2")
#: formats qemu-img may read from an image's data (never with backing files)
IMAGE_INPUT_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed")
#: an image's disk_format -> the qemu-img format its data is written in (iso and the
#: Amazon formats are the volume's bytes as they are; vhd is qemu's "vpc")
UPLOAD_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi",
                  "vhdx": "vhdx", "vhd": "vpc", "iso": "raw", "ami": "raw", "aki": "raw",
                  "ari": "raw"}


class PoolError(Exception):
    """A pool operation failed for a reason a retry will not change (``temporary`` False)
    or might (``temporary`` True)."""

    def __init__(self, message: str, temporary: bool = False):
        super().__init__(message)
        self.temporary = temporary


@dataclass
class Inventory:
    """What the pool directory holds under this agent's prefix."""

    volumes: dict[str, tuple[str, Path]] = field(default_factory=dict)  # id -> (fmt, path)
    snapshots: dict[str, Path] = field(default_factory=dict)
    partials: list[Path] = field(default_factory=list)


def check_id(kind: str, value: str) -> str:
    """An id the API gave, safe to put into a file name."""
    if not ID_RE.match(value):
        raise PoolError(f"{kind} id {value!r} has characters a pool file name cannot carry")
    return value


class Pool:
    """One pool directory of volume files (``prefix`` marks this agent's files)."""

    def __init__(self, path: str | Path, prefix: str, runner: Runner,
                 views: RawViews | None = None):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.]*$", prefix):
            raise ValueError(f"pool prefix {prefix!r}: letters, digits, '_' and '.' only")
        self.path = Path(path)
        self.prefix = prefix
        self.runner = runner
        self.views = views
        p = re.escape(prefix)
        self._vol_re = re.compile(rf"^{p}-volume-([A-Za-z0-9_-]+)\.(raw|qcow2)$")
        self._snap_re = re.compile(rf"^{p}-snapshot-([A-Za-z0-9_-]+)\.qcow2$")
        self._part_re = re.compile(rf"^{p}-.+\.part$")

    # --- names --------------------------------------------------------------------------
    def volume_path(self, volume_id: str, fmt: str) -> Path:
        return self.path / f"{self.prefix}-volume-{check_id('volume', volume_id)}.{fmt}"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.path / f"{self.prefix}-snapshot-{check_id('snapshot', snapshot_id)}.qcow2"

    @staticmethod
    def part(path: Path) -> Path:
        return path.with_name(path.name + ".part")

    def scratch(self, what: str, *ids: str) -> Path:
        """A temporary file of this agent (a download, an upload's conversion)."""
        return self.path / f"{self.prefix}-{what}-{'-'.join(ids)}.part"

    # --- inventory ----------------------------------------------------------------------
    def scan(self) -> Inventory:
        """The volumes, snapshots and unfinished files carrying this agent's prefix."""
        inv = Inventory()
        self.path.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(self.path):
            if not entry.is_file(follow_symlinks=False):
                continue
            if m := self._vol_re.match(entry.name):
                inv.volumes[m.group(1)] = (m.group(2), Path(entry.path))
            elif m := self._snap_re.match(entry.name):
                inv.snapshots[m.group(1)] = Path(entry.path)
            elif self._part_re.match(entry.name):
                inv.partials.append(Path(entry.path))
        return inv

    def remove_partials(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Remove unfinished files no running operation owns (after a crash: all of them)."""
        busy = {Path(p) for p in keep}
        gone = []
        for path in self.scan().partials:
            if path not in busy:
                path.unlink(missing_ok=True)
                gone.append(path)
        return gone

    def source(self, volume_id: str, fmt: str) -> tuple[Path, str]:
        """Where to read a volume's data and in which format: its file, or its raw view
        while a daemon serves it (the daemon holds the qcow2 file)."""
        if fmt == "qcow2" and self.views is not None and self.views.active(volume_id):
            return self.views.view_path(volume_id), "raw"
        return self.volume_path(volume_id, fmt), fmt

    def info(self, path: Path, fmt: str | None = None) -> dict[str, object]:
        # -U: a qcow2 volume served by its view's daemon is locked; its header is read
        argv = ["qemu-img", "info", "-U", "--output=json"]
        if fmt:
            argv += ["-f", fmt]
        argv.append(str(path))
        try:
            data = json.loads(self.runner.run(argv))
        except ValueError as exc:
            raise PoolError(f"qemu-img info {path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def size_gb(self, path: Path, fmt: str) -> int:
        """The virtual size in GiB, rounded up."""
        size = int(str(self.info(path, fmt).get("virtual-size", 0)))
        return -(-size // GIB)

    def capacity(self) -> tuple[int, int]:
        """(capacity, free) of the pool's file system in whole GiB."""
        self.path.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(self.path)
        return st.f_blocks * st.f_frsize // GIB, st.f_bavail * st.f_frsize // GIB

    # --- making volumes -----------------------------------------------------------------
    def _ready(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def _finish(self, part: Path, final: Path) -> None:
        os.replace(part, final)

    def _img(self, *argv: str) -> None:
        try:
            self.runner.run(["qemu-img", *argv])
        except CommandError as exc:
            raise PoolError(f"qemu-img {argv[0]}: {exc.stderr or exc}",
                            temporary=exc.returncode == -1) from None

    def create_blank(self, volume_id: str, fmt: str, size_gb: int) -> Path:
        final = self.volume_path(volume_id, fmt)
        part = self.part(final)
        self._ready()
        try:
            self._img("create", "-q", "-f", fmt, str(part), f"{size_gb}G")
            self._finish(part, final)
        finally:
            part.unlink(missing_ok=True)
        return final

    def create_from_file(self, volume_id: str, fmt: str, size_gb: int, source: Path,
                         source_fmt: str) -> Path:
        """A new volume holding ``source``'s data (another volume, a snapshot or a
        downloaded image), grown to ``size_gb``."""
        final = self.volume_path(volume_id, fmt)
        part = self.part(final)
        self._ready()
        try:
            have = self.size_gb(source, source_fmt)
            if have > size_gb:
                raise PoolError(f"the source's virtual size {have} GiB is larger than the "
                                f"volume's {size_gb} GiB")
            self._img("convert", "-q", "-f", source_fmt, "-O", fmt, str(source), str(part))
            vsize = int(str(self.info(part, fmt).get("virtual-size", 0)))
            if vsize < size_gb * GIB:
                self._img("resize", "-q", "-f", fmt, str(part), f"{size_gb}G")
            self._finish(part, final)
        finally:
            part.unlink(missing_ok=True)
        return final

    def create_from_image(self, volume_id: str, fmt: str, size_gb: int,
                          chunks: Iterable[bytes]) -> Path:
        """Download an image's data (``chunks``) and convert it into a new volume."""
        download = self.scratch("download", check_id("volume", volume_id))
        self._ready()
        try:
            with open(download, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            src_fmt = self.image_format(download)
            return self.create_from_file(volume_id, fmt, size_gb, download, src_fmt)
        finally:
            download.unlink(missing_ok=True)

    def image_format(self, path: Path) -> str:
        """The format of downloaded image data, refusing what could read other files."""
        data = self.info(path)
        fmt = str(data.get("format", ""))
        if fmt not in IMAGE_INPUT_FORMATS:
            raise PoolError(f"image data in format {fmt!r} cannot be made a volume "
                            f"(allowed: {', '.join(IMAGE_INPUT_FORMATS)})")
        if data.get("backing-filename") or data.get("full-backing-filename"):
            raise PoolError("image data names a backing file: refused")
        specific = data.get("format-specific")
        if isinstance(specific, dict) and isinstance(specific.get("data"), dict) \
                and specific["data"].get("data-file"):
            raise PoolError("image data names an external data file: refused")
        return fmt

    def grow(self, volume_id: str, fmt: str, size_gb: int) -> None:
        """Grow a volume to ``size_gb`` (never shrinks)."""
        path, src_fmt = self.source(volume_id, fmt)
        if src_fmt != fmt:  # served by its view: grown through the daemon
            if os.path.getsize(path) < size_gb * GIB:
                os.truncate(path, size_gb * GIB)
        elif self.size_gb(path, fmt) < size_gb:
            self._img("resize", "-q", "-f", fmt, str(path), f"{size_gb}G")

    def snapshot(self, snapshot_id: str, volume_id: str, fmt: str) -> Path:
        """A self-contained qcow2 copy of the volume's data as it is now."""
        final = self.snapshot_path(snapshot_id)
        part = self.part(final)
        self._ready()
        src, src_fmt = self.source(volume_id, fmt)
        try:
            self._img("convert", "-q", "-f", src_fmt, "-O", "qcow2", str(src), str(part))
            self._finish(part, final)
        finally:
            part.unlink(missing_ok=True)
        return final

    # --- removing -----------------------------------------------------------------------
    def delete_volume(self, volume_id: str, fmt: str) -> None:
        self.volume_path(volume_id, fmt).unlink(missing_ok=True)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.snapshot_path(snapshot_id).unlink(missing_ok=True)

    # --- uploads ------------------------------------------------------------------------
    @contextlib.contextmanager
    def upload_file(self, volume_id: str, fmt: str, image_id: str,
                    disk_format: str) -> Iterator[Path]:
        """The volume's data in ``disk_format`` (a temporary conversion unless the
        volume's own format is asked for), removed afterwards."""
        out_fmt = UPLOAD_FORMATS.get(disk_format)
        if out_fmt is None:
            raise PoolError(f"cannot upload a volume as {disk_format!r} "
                            f"(allowed: {', '.join(UPLOAD_FORMATS)})")
        path, src_fmt = self.source(volume_id, fmt)
        tmp = self.scratch("upload", check_id("volume", volume_id), check_id("image", image_id))
        try:
            self._img("convert", "-q", "-f", src_fmt, "-O", out_fmt, str(path), str(tmp))
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)
