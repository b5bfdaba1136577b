"""Inspection of uploaded image data before it may become ``active``.

Every upload is checked against the ``disk_format`` the user declared, in two
independent layers:

1. A small reader of the formats' headers (no external program): what the
   data really is (qcow2, vmdk, vhd, vhdx, vdi, qed, luks, parallels, iso or
   nothing known, i.e. raw), and for qcow2 and vmdk whether the header points
   at other files (a backing file, an external data file, extents).
2. ``qemu-img info`` and ``qemu-img check`` with an explicit ``-f`` (never
   format probing), run under ``prlimit`` with a CPU-time and an address-space
   limit and a wall-clock timeout, whose JSON must agree with layer 1.

Refused, with a message saying what was wrong and what is allowed: empty
data, data whose real format differs from ``disk_format`` (a qcow2 uploaded
as raw), a qcow2 with a backing file or an external data file, a corrupt or
truncated qcow2/vmdk, a VMDK other than a single self-contained sparse file
(``monolithicSparse``/``streamOptimized``), an ISO without an ISO 9660
volume descriptor, and anything qemu-img cannot parse within its limits.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Formats qemu can open that are not raw. Data that is one of these is never
# accepted as ``raw`` (qemu would interpret it, not boot it as bytes).
CONTAINER_FORMATS = ("qcow2", "qed", "vmdk", "vdi", "vhd", "vhdx", "luks", "parallels")
SAFE_VMDK_TYPES = ("monolithicSparse", "streamOptimized")
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_EXT_DATA_FILE = 0x44415441
QCOW2_EXT_END = 0
ISO_OFFSETS = (0x8001, 0x8801, 0x9001)
_SIZE_RE = re.compile(r"^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+(\w+)", re.MULTILINE)


class ImageDataError(Exception):
    """The data is not an acceptable image of its declared format (a 400 for the user)."""


@dataclass(frozen=True)
class Inspection:
    """What the inspection found out about accepted data."""

    format: str
    virtual_size: int


@dataclass(frozen=True)
class Limits:
    """How qemu-img is run: program, CPU seconds, address space in bytes, timeout."""

    qemu_img: str = "qemu-img"
    cpu_seconds: int = 30
    memory_bytes: int = 1024 * 1024 * 1024
    timeout: float = 120.0


def _read_at(fh: Any, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return bytes(fh.read(length))


def sniff(path: Path) -> str | None:
    """The format the data really is, from its magic numbers; None for raw data."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = _read_at(fh, 0, 512)
        if head.startswith(b"QFI\xfb"):
            return "qcow2"
        if head.startswith(b"QED\x00"):
            return "qed"
        if head.startswith((b"KDMV", b"COWD", b"# Disk DescriptorFile")):
            return "vmdk"
        if head.startswith(b"vhdxfile"):
            return "vhdx"
        if head.startswith(b"LUKS\xba\xbe"):
            return "luks"
        if head.startswith((b"WithoutFreeSpace", b"WithouFreSpacExt")):
            return "parallels"
        if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == 0xBEDA107F:
            return "vdi"
        if head.startswith(b"conectix"):
            return "vhd"
        if size >= 512 and _read_at(fh, size - 512, 8) == b"conectix":
            return "vhd"
        for offset in ISO_OFFSETS:
            if size >= offset + 5 and _read_at(fh, offset, 5) == b"CD001":
                return "iso"
    return None


def check_qcow2_header(path: Path) -> None:
    """Refuse a qcow2 whose header names a backing file or an external data file."""
    with open(path, "rb") as fh:
        header = _read_at(fh, 0, 512)
        if len(header) < 72:
            raise ImageDataError("The qcow2 header is truncated (the data is too short).")
        version = struct.unpack_from(">I", header, 4)[0]
        if version not in (2, 3):
            raise ImageDataError(f"qcow2 version {version} is not supported (only 2 and 3).")
        backing_offset, backing_size = struct.unpack_from(">QI", header, 8)
        if backing_offset != 0 or backing_size != 0:
            raise ImageDataError(
                "The qcow2 image has a backing file; only self-contained images are "
                "accepted. Flatten it first: qemu-img convert -O qcow2 in.qcow2 out.qcow2."
            )
        if version == 2:
            return
        if len(header) < 104:
            raise ImageDataError("The qcow2 v3 header is truncated.")
        incompatible = struct.unpack_from(">Q", header, 72)[0]
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise ImageDataError(
                "The qcow2 image uses an external data file; only self-contained images "
                "are accepted. Convert it first: qemu-img convert -O qcow2 in.qcow2 out.qcow2."
            )
        header_length = struct.unpack_from(">I", header, 100)[0]
        # Header extensions follow the header: (type u32, length u32, data padded to 8).
        offset = max(header_length, 104)
        for _ in range(64):
            ext = _read_at(fh, offset, 8)
            if len(ext) < 8:
                break
            ext_type, ext_len = struct.unpack(">II", ext)
            if ext_type == QCOW2_EXT_END:
                break
            if ext_type == QCOW2_EXT_DATA_FILE:
                raise ImageDataError(
                    "The qcow2 image names an external data file; only self-contained "
                    "images are accepted."
                )
            offset += 8 + ((ext_len + 7) & ~7)


def vmdk_descriptor(path: Path) -> str:
    """The embedded descriptor of a sparse (KDMV) VMDK; refuses every other kind."""
    with open(path, "rb") as fh:
        header = _read_at(fh, 0, 512)
    if header.startswith(b"# Disk DescriptorFile"):
        raise ImageDataError(
            "The VMDK is a descriptor file that refers to extents in other files; only a "
            "single self-contained sparse VMDK (monolithicSparse or streamOptimized) is "
            "accepted."
        )
    if not header.startswith(b"KDMV") or len(header) < 44:
        raise ImageDataError(
            "The VMDK is not a sparse VMDK (KDMV header); only monolithicSparse or "
            "streamOptimized VMDKs are accepted."
        )
    desc_sector, desc_sectors = struct.unpack_from("<QQ", header, 28)
    if desc_sector == 0 or desc_sectors == 0 or desc_sectors > 2048:
        raise ImageDataError("The VMDK has no usable embedded descriptor.")
    with open(path, "rb") as fh:
        raw = _read_at(fh, desc_sector * 512, desc_sectors * 512)
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


def check_vmdk_descriptor(path: Path) -> None:
    text = vmdk_descriptor(path)
    match = re.search(r'^\s*createType\s*=\s*"?([A-Za-z0-9]+)"?', text, re.MULTILINE)
    create_type = match.group(1) if match else ""
    if create_type not in SAFE_VMDK_TYPES:
        raise ImageDataError(
            f"VMDK createType {create_type or '(none)'!r} is not accepted; allowed: "
            f"{', '.join(SAFE_VMDK_TYPES)} (a single self-contained file)."
        )
    extents = _SIZE_RE.findall(text)
    if len(extents) != 1 or extents[0][1].upper() != "SPARSE":
        raise ImageDataError(
            "The VMDK describes extents other than its own single sparse extent; only "
            "self-contained VMDKs are accepted."
        )


def run_qemu_img(limits: Limits, *args: str) -> subprocess.CompletedProcess[str]:
    """qemu-img under prlimit (CPU time, address space) with a wall-clock timeout."""
    cmd = [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        "--",
        limits.qemu_img,
        *args,
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    try:
        return subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limits.timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageDataError(
            f"qemu-img did not finish inspecting the data within {limits.timeout:.0f} s; "
            "the image is refused."
        ) from None
    except FileNotFoundError as exc:
        raise RuntimeError(f"cannot run qemu-img under prlimit: {exc}") from exc


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = lines[0] if lines else "no message"
    return text[:300]


def _limited(proc: subprocess.CompletedProcess[str]) -> bool:
    # Killed by a signal (SIGXCPU/SIGKILL for the CPU limit) or out of memory.
    return proc.returncode < 0 or "Cannot allocate memory" in proc.stderr


def qemu_info(path: Path, fmt: str, limits: Limits) -> dict[str, Any]:
    proc = run_qemu_img(limits, "info", "-f", fmt, "--output=json", str(path))
    if proc.returncode != 0:
        if _limited(proc):
            raise ImageDataError(
                f"qemu-img exceeded its CPU or memory limit reading the data as {fmt}; "
                "the image is refused."
            )
        raise ImageDataError(
            f"The data is not a valid {fmt} image: {_first_error(proc.stderr)}."
        )
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        raise ImageDataError(f"qemu-img gave no readable answer for the {fmt} data.") from None
    if not isinstance(info, dict) or info.get("format") != fmt:
        raise ImageDataError(f"qemu-img does not read the data as {fmt}.")
    return info


def qemu_check(path: Path, fmt: str, limits: Limits) -> None:
    """qemu-img check: 0 is clean, 3 is leaked clusters only (harmless)."""
    proc = run_qemu_img(limits, "check", "-f", fmt, "--output=json", str(path))
    if proc.returncode in (0, 3):
        return
    if _limited(proc):
        raise ImageDataError(
            f"qemu-img exceeded its CPU or memory limit checking the {fmt} data; "
            "the image is refused."
        )
    if proc.returncode == 2:
        raise ImageDataError(
            f"The {fmt} image is corrupt or truncated (qemu-img check found "
            f"corruptions: {_first_error(proc.stderr)})."
        )
    raise ImageDataError(
        f"The {fmt} image cannot be checked by qemu-img: {_first_error(proc.stderr)}."
    )


def _virtual_size(info: dict[str, Any]) -> int:
    value = info.get("virtual-size")
    if not isinstance(value, int) or value <= 0:
        raise ImageDataError("qemu-img reports no usable virtual size for the data.")
    return value


def _mismatch(detected: str, declared: str) -> ImageDataError:
    hint = (
        f"Upload it with disk_format {detected}"
        if detected in ("qcow2", "vmdk", "iso")
        else f"Convert it first (qemu-img convert -O {declared})"
    )
    return ImageDataError(
        f"The data is a {detected} image, but disk_format is {declared}. {hint}, "
        "so the format the cloud uses is the format the data really has."
    )


def inspect(path: Path, disk_format: str, limits: Limits) -> Inspection:
    """Check the data at ``path`` against ``disk_format``; raise ImageDataError to refuse."""
    size = path.stat().st_size
    if size == 0:
        raise ImageDataError("The image data is empty (0 bytes); an image needs data.")
    detected = sniff(path)
    if disk_format == "raw":
        if detected in CONTAINER_FORMATS:
            raise _mismatch(detected, "raw")
        _virtual_size(qemu_info(path, "raw", limits))
        return Inspection("raw", size)
    if disk_format == "iso":
        if detected in CONTAINER_FORMATS:
            raise _mismatch(detected, "iso")
        if detected != "iso":
            raise ImageDataError(
                "The data has no ISO 9660 volume descriptor (CD001), so it is not an iso; "
                "use disk_format raw for a plain disk image."
            )
        _virtual_size(qemu_info(path, "raw", limits))
        return Inspection("iso", size)
    if disk_format == "qcow2":
        if detected != "qcow2":
            if detected is not None:
                raise _mismatch(detected, "qcow2")
            raise ImageDataError(
                "The data is not a qcow2 image (no qcow2 header); allowed for it: "
                "disk_format raw, or convert it with qemu-img convert -O qcow2."
            )
        check_qcow2_header(path)
        info = qemu_info(path, "qcow2", limits)
        data = (info.get("format-specific") or {}).get("data") or {}
        if info.get("backing-filename") or info.get("full-backing-filename"):
            raise ImageDataError("The qcow2 image has a backing file; it is refused.")
        if data.get("data-file"):
            raise ImageDataError("The qcow2 image uses an external data file; it is refused.")
        qemu_check(path, "qcow2", limits)
        return Inspection("qcow2", _virtual_size(info))
    if disk_format == "vmdk":
        if detected != "vmdk":
            if detected is not None:
                raise _mismatch(detected, "vmdk")
            raise ImageDataError("The data is not a VMDK image (no VMDK header).")
        check_vmdk_descriptor(path)
        info = qemu_info(path, "vmdk", limits)
        data = (info.get("format-specific") or {}).get("data") or {}
        extents = data.get("extents") or []
        if data.get("create-type") not in SAFE_VMDK_TYPES or len(extents) != 1:
            raise ImageDataError("The VMDK is not a single self-contained sparse file.")
        if Path(str(extents[0].get("filename", ""))).name != path.name:
            raise ImageDataError("The VMDK refers to an extent in another file; it is refused.")
        qemu_check(path, "vmdk", limits)
        return Inspection("vmdk", _virtual_size(info))
    raise ImageDataError(f"disk_format {disk_format!r} cannot be inspected.")
