"""Inspection of uploaded data with the real qemu-img: the bad-image corpus is refused.

Each bad image is made here with qemu-img or by hand; none may pass. The two
layers (the header reader and qemu-img's JSON) are also checked on their own,
so one alone still refuses a backing file or a data file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from image_api import qcow2
from stratus.image import inspect as insp
from stratus.image.inspect import ImageDataError, Limits, inspect

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) missing"),
]
LIMITS = Limits()


def refused(path: Path, disk_format: str) -> str:
    with pytest.raises(ImageDataError) as err:
        inspect(path, disk_format, LIMITS)
    return str(err.value)


def test_good_images_pass_with_their_virtual_size(tmp_path: Path) -> None:
    good = qcow2(tmp_path / "good.qcow2", "20M")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", str(good)],
                   check=True, capture_output=True)
    assert inspect(good, "qcow2", LIMITS) == insp.Inspection("qcow2", 20 * 1024 * 1024)
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\x00" * 1000 + b"boot" * 100)
    assert inspect(raw, "raw", LIMITS) == insp.Inspection("raw", raw.stat().st_size)
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "vmdk", "-o",
                    "subformat=streamOptimized", str(good), str(vmdk)], check=True)
    assert inspect(vmdk, "vmdk", LIMITS).virtual_size == 20 * 1024 * 1024
    iso = tmp_path / "disk.iso"
    iso.write_bytes(b"\x00" * 0x8001 + b"CD001" + b"\x00" * 4000)
    assert inspect(iso, "iso", LIMITS).format == "iso"


def test_backing_file_to_etc_shadow_is_refused(tmp_path: Path) -> None:
    bad = qcow2(tmp_path / "shadow.qcow2", "10M", "backing_file=/etc/shadow", "backing_fmt=raw")
    message = refused(bad, "qcow2")
    assert "backing file" in message and "self-contained" in message


def test_qcow2_backing_a_qcow2_is_refused(tmp_path: Path) -> None:
    base = qcow2(tmp_path / "base.qcow2", "10M")
    bad = qcow2(tmp_path / "overlay.qcow2", "10M", f"backing_file={base}", "backing_fmt=qcow2")
    assert "backing file" in refused(bad, "qcow2")


def test_external_data_file_is_refused(tmp_path: Path) -> None:
    bad = qcow2(tmp_path / "df.qcow2", "10M", f"data_file={tmp_path / 'data.raw'}")
    assert "external data file" in refused(bad, "qcow2")


def test_qemu_img_layer_alone_refuses_backing_and_data_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insp, "check_qcow2_header", lambda _path: None)
    backing = qcow2(tmp_path / "b.qcow2", "10M", "backing_file=/etc/shadow", "backing_fmt=raw")
    assert "backing file" in refused(backing, "qcow2")
    data_file = qcow2(tmp_path / "d.qcow2", "10M", f"data_file={tmp_path / 'x.raw'}")
    assert "external data file" in refused(data_file, "qcow2")


def test_qcow2_declared_raw_is_refused(tmp_path: Path) -> None:
    image = qcow2(tmp_path / "real.qcow2", "10M")
    message = refused(image, "raw")
    assert "is a qcow2 image, but disk_format is raw" in message
    assert "disk_format qcow2" in message


def test_vmdk_declared_raw_or_qcow2_is_refused(tmp_path: Path) -> None:
    vmdk = tmp_path / "x.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "10M"], check=True)
    assert "is a vmdk image, but disk_format is raw" in refused(vmdk, "raw")
    assert "is a vmdk image, but disk_format is qcow2" in refused(vmdk, "qcow2")


def test_truncated_qcow2_is_refused(tmp_path: Path) -> None:
    whole = qcow2(tmp_path / "whole.qcow2", "64M")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", str(whole)],
                   check=True, capture_output=True)
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(whole.read_bytes()[: 1024 * 1024])
    assert "corrupt or truncated" in refused(cut, "qcow2")
    tiny_cut = tmp_path / "header-only.qcow2"
    tiny_cut.write_bytes(whole.read_bytes()[:40])
    assert "truncated" in refused(tiny_cut, "qcow2")


def test_garbage_is_refused_as_every_structured_format(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4096)
    assert "not a qcow2 image" in refused(garbage, "qcow2")
    assert "not a VMDK image" in refused(garbage, "vmdk")
    assert "no ISO 9660 volume descriptor" in refused(garbage, "iso")
    fake = tmp_path / "fake.qcow2"
    fake.write_bytes(b"QFI\xfb" + b"\xff" * 4092)
    assert "qcow2" in refused(fake, "qcow2")


def test_zero_bytes_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.touch()
    for fmt in ("raw", "qcow2", "vmdk", "iso"):
        assert "empty (0 bytes)" in refused(empty, fmt)


def test_vmdk_with_extents_in_other_files_is_refused(tmp_path: Path) -> None:
    for subformat in ("monolithicFlat", "twoGbMaxExtentSparse"):
        vmdk = tmp_path / f"{subformat}.vmdk"
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o",
                        f"subformat={subformat}", str(vmdk), "10M"], check=True)
        assert "refers to extents in other files" in refused(vmdk, "vmdk")


def test_sparse_vmdk_claiming_another_create_type_is_refused(tmp_path: Path) -> None:
    vmdk = tmp_path / "s.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "10M"], check=True)
    data = bytearray(vmdk.read_bytes())
    at = data.index(b'createType="monolithicSparse"')
    data[at : at + 29] = b'createType="vmfsSparse"      '
    vmdk.write_bytes(bytes(data))
    assert "createType 'vmfsSparse' is not accepted" in refused(vmdk, "vmdk")


def test_other_container_formats_never_pass_as_raw(tmp_path: Path) -> None:
    for fmt in ("vdi", "vhdx", "qed"):
        path = tmp_path / f"x.{fmt}"
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "10M"], check=True)
        assert f"is a {fmt} image, but disk_format is raw" in refused(path, "raw")


def test_qemu_img_runs_with_cpu_and_memory_limits(tmp_path: Path) -> None:
    spin = tmp_path / "spin-qemu-img"
    spin.write_text("#!/bin/sh\nwhile :; do :; done\n")
    spin.chmod(0o755)
    image = qcow2(tmp_path / "ok.qcow2", "1M")
    slow = Limits(qemu_img=str(spin), cpu_seconds=1, timeout=60)
    with pytest.raises(ImageDataError, match="exceeded its CPU or memory limit"):
        inspect(image, "qcow2", slow)
    starved = Limits(memory_bytes=16 * 1024 * 1024)
    with pytest.raises(ImageDataError, match="exceeded its CPU or memory limit"):
        inspect(image, "qcow2", starved)


def test_qemu_img_is_always_given_an_explicit_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    real = insp.run_qemu_img

    def spy(limits: Limits, *args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return real(limits, *args)

    monkeypatch.setattr(insp, "run_qemu_img", spy)
    inspect(qcow2(tmp_path / "a.qcow2", "1M"), "qcow2", LIMITS)
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"x" * 4096)
    inspect(raw, "raw", LIMITS)
    assert calls and all(args[1] == "-f" and args[2] in ("qcow2", "raw") for args in calls)
