"""The tiny test guest (tests/images/build-tiny.sh) boots and does its job.

Each test boots the image once under QEMU/TCG, the way Stratus will: a
virtio disk and NIC, its address from DHCP, metadata from a config-2 drive
or from 169.254.169.254, and then checks what a user of the image relies on:
the serial console markers, the hostname, SSH with the injected key, the
user-data script's exit status, and a clean ACPI power-off.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from guest_vm import (
    MARKER_METADATA,
    MARKER_NETWORK,
    MARKER_NO_METADATA,
    MARKER_READY,
    MARKER_USERDATA,
    QemuGuest,
    make_config_drive,
    write_metadata_tree,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOOT_TIMEOUT = 120  # ~6 s to "ready" when the machine is idle


def _meta_data(hostname: str, key: Path, *, keys_list_only: bool = False) -> dict[str, object]:
    public_key = key.with_suffix(".pub").read_text().strip() + "\n"  # Nova adds "\n"
    md: dict[str, object] = {
        "uuid": str(uuid.uuid4()),
        "name": hostname.split(".")[0],
        "hostname": hostname,
        "launch_index": 0,
        "availability_zone": "nova",
        "project_id": "6d6e1e2f0a8b4b3f9c1f2e3d4c5b6a79",
        "meta": {"role": "test"},
        "keys": [{"name": "test", "type": "ssh", "data": public_key}],
    }
    if not keys_list_only:
        md["public_keys"] = {"test": public_key}
    return md


def _console_lines(vm: QemuGuest) -> list[str]:
    return [line for line in vm.console().splitlines() if line.startswith("STRATUS-GUEST:")]


def test_boots_from_config_drive_and_accepts_ssh(
    tiny_image: Path, ssh_key: Path, guest: QemuGuest, tmp_path: Path
) -> None:
    md = _meta_data("tiny-one", ssh_key)
    tree = write_metadata_tree(
        tmp_path / "cd",
        md,
        user_data="#!/bin/sh\necho \"user data ran as $(id -u) on $(hostname)\"\n"
        "echo done > /root/userdata-ran\nexit 0\n",
    )
    drive = make_config_drive(tree, tmp_path / "config.iso")

    guest.start(tiny_image, cdrom=drive)
    guest.wait_for(MARKER_READY, BOOT_TIMEOUT)
    ready_after = guest.elapsed()

    network = MARKER_NETWORK.search(guest.console())
    assert network and network.group(1) == "10.0.2.15"  # QEMU's user-mode DHCP lease
    metadata = MARKER_METADATA.search(guest.console())
    assert metadata, guest.console()[-3000:]
    assert metadata.groups() == ("config-drive", md["uuid"], "tiny-one")
    assert MARKER_USERDATA.search(guest.console()).group(1) == "0"  # type: ignore[union-attr]
    assert "user data ran as 0 on tiny-one" in guest.console()
    assert [line.split(" ")[1] for line in _console_lines(guest)] == [
        "network", "metadata", "userdata", "ready",
    ]

    done = guest.ssh(ssh_key, "hostname; cat /root/userdata-ran; cat /run/stratus/source")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tiny-one", "done", "config-drive"]
    print(f"tiny guest: ready {ready_after:.1f} s after qemu started")

    # util-linux's lsblk, as Tempest's disk checks run it: the boot disk, in bytes
    done = guest.ssh(ssh_key, "set -eu; PATH=$PATH:/sbin:/usr/sbin; lsblk -lb --nodeps")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:6] == ["NAME", "MAJ:MIN", "RM", "SIZE", "RO", "TYPE"], header
    disks = [r.split() for r in rows if r.split()[5:6] == ["disk"]]
    assert disks and all(int(d[3]) > 0 for d in disks), done.stdout

    # libvirt's shutdown is an ACPI power-button press: the guest powers off.
    guest.monitor_command("system_powerdown")
    powerdown_at = guest.elapsed()
    assert guest.wait_exit(30) == 0, guest.console()[-2000:]
    print(f"tiny guest: powered off {guest.elapsed() - powerdown_at:.1f} s after the ACPI event")
    assert "STRATUS-GUEST: shutting down" in guest.console()


def test_reads_metadata_service_on_169_254_169_254(
    tiny_image: Path, ssh_key: Path, guest: QemuGuest, tmp_path: Path
) -> None:
    md = _meta_data("tiny-two.example.org", ssh_key, keys_list_only=True)
    tree = write_metadata_tree(tmp_path / "md", md, user_data="#!/bin/sh\nexit 3\n")

    guest.start(tiny_image, metadata_root=tree)
    guest.wait_for(MARKER_READY, BOOT_TIMEOUT)
    print(f"tiny guest (metadata over HTTP): ready {guest.elapsed():.1f} s after qemu started")

    metadata = MARKER_METADATA.search(guest.console())
    assert metadata, guest.console()[-3000:]
    assert metadata.groups() == ("169.254.169.254", md["uuid"], "tiny-two.example.org")
    assert MARKER_USERDATA.search(guest.console()).group(1) == "3"  # type: ignore[union-attr]
    # The key came from the "keys" list (no public_keys in this metadata).
    done = guest.ssh(ssh_key, "hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tiny-two.example.org"


def test_vfat_config_drive_on_a_virtio_disk(
    tiny_image: Path, ssh_key: Path, guest: QemuGuest, tmp_path: Path
) -> None:
    md = _meta_data("tiny-three", ssh_key)
    tree = write_metadata_tree(tmp_path / "cd", md, user_data="#cloud-config\n{}\n")
    drive = make_config_drive(tree, tmp_path / "config.vfat", fmt="vfat")

    guest.start(tiny_image, extra_disk=drive, ssh=False)
    guest.wait_for(MARKER_READY, BOOT_TIMEOUT)

    metadata = MARKER_METADATA.search(guest.console())
    assert metadata and metadata.groups() == ("config-drive", md["uuid"], "tiny-three")
    # Only "#!" user data is run.
    assert not MARKER_USERDATA.search(guest.console())
    assert "user data is not a #! script" in guest.console()


def test_without_metadata_says_so_and_is_still_ready(
    tiny_image: Path, guest: QemuGuest
) -> None:
    cache = tiny_image.parent
    # Direct kernel boot, to shorten the metadata wait from the command line.
    guest.start(
        tiny_image,
        kernel=cache / "tiny-vmlinuz",
        initrd=cache / "tiny-initrd.gz",
        append="console=ttyS0,115200n8 stratus.metadata_timeout=3",
        ssh=False,
    )
    guest.wait_for(MARKER_READY, BOOT_TIMEOUT)
    assert MARKER_NO_METADATA.search(guest.console())
    assert not MARKER_METADATA.search(guest.console())
    assert not MARKER_USERDATA.search(guest.console())
