"""End-to-end volumes (issue 10) on the boot module's all-in-one cloud, with real TCG guests.

The cloud is test_boot_aio.py's session deploy (the ``cloud`` fixture of
tests/e2e/conftest.py); these tests are marked ``e2e_boot_cloud`` and run before its
bystander guest is booted, and delete everything they made. At most two guests run at once
and are reused across the steps:

- guest A (the tiny image, through the cloud_server module) gets the empty 1 GiB volume
  with ``openstack server add volume``: the guest sees a new virtio disk, a FAT file system
  is made on it (busybox ``mkdosfs``; the tiny image has no ext2 module) and a file with a
  known checksum written; ``openstack server remove volume`` detaches it;
- the detached volume is uploaded as an image (``openstack image create --volume``),
  extended (``openstack volume set --size 2``), snapshotted (``openstack volume snapshot
  create``) and cloned from the snapshot (``openstack volume create --snapshot``);
- guest B boots from the volume made from the tiny image (``openstack server create
  --volume``), and gets the extended volume through openstacksdk (``attach_volume``): it
  sees 2 GiB and reads the checksum back; the volume is extended again while attached
  (``openstack --os-volume-api-version 3.42 volume set --size 3``) and the running guest
  sees 3 GiB (the LUN made again by the storage agent, QEMU's capacity re-read by the
  compute agent) with the same checksum; ``detach_volume``;
- a playbook with cloud_volume + cloud_volume_attachment attaches the snapshot's clone to
  guest A (check mode first, then for real, then a second run unchanged): same checksum;
- after the deletes: no tgt target of the deploy, no libvirt secret, no pool file.

Every attach here goes through tgt and QEMU's iSCSI initiator (the storage host is the
compute host, but the compute agent always uses the network disk).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
from test_boot_aio import (
    BIN,
    READY,
    Cloud,
    boot_tasks,
    pid_alive,
    recap,
    run,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.e2e_boot_cloud,
              pytest.mark.timeout(1800)]

GIB = 1024 ** 3
DATA = "/mnt/data"  # the file written on the volume's file system in the guest


# ---- helpers -------------------------------------------------------------------------------
def volume(cloud: Cloud, volume_id: str) -> dict[str, Any] | None:
    resp = cloud.api("GET", "volumev3", f"/volumes/{volume_id}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["volume"])


def wait_volume(cloud: Cloud, volume_id: str, status: str, timeout: float = 180) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        vol = volume(cloud, volume_id)
        assert vol is not None, f"volume {volume_id} is gone"
        assert vol["status"] != "error", vol
        return vol if vol["status"] == status else None
    return dict(wait_for(f"volume {volume_id} {status}", probe, timeout, 1))


def wait_volume_gone(cloud: Cloud, volume_id: str, timeout: float = 120) -> None:
    wait_for(f"volume {volume_id} deleted", lambda: volume(cloud, volume_id) is None, timeout, 1)


def guest_disks(cloud: Cloud, address: str) -> dict[str, int]:
    """The guest's virtio disks and their sizes in bytes, from /sys/block."""
    out = cloud.ssh(address, "for d in /sys/block/vd*; do echo ${d##*/} $(cat $d/size); done")
    disks = {}
    for line in out.stdout.splitlines():
        name, _, sectors = line.partition(" ")
        if sectors.strip().isdigit():
            disks[name] = int(sectors) * 512
    return disks


def wait_new_disk(cloud: Cloud, address: str, before: dict[str, int]) -> tuple[str, int]:
    new = wait_for("a new virtio disk in the guest", lambda: {
        k: v for k, v in guest_disks(cloud, address).items() if k not in before}, 90, 2)
    assert len(new) == 1, new
    return next(iter(new.items()))


def wait_disk_gone(cloud: Cloud, address: str, disk: str) -> None:
    wait_for(f"{disk} to leave the guest", lambda: disk not in guest_disks(cloud, address), 90, 2)


def read_checksum(cloud: Cloud, address: str, disk: str) -> str:
    out = cloud.ssh(address, f"mkdir -p /mnt && mount -t vfat /dev/{disk} /mnt && "
                             f"md5sum {DATA} && umount /mnt").stdout
    return out.split()[0]


def sdk(cloud: Cloud) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one("stratus"))


def storage_settings(cloud: Cloud) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    files = [cloud.config_dir / "stratus.conf", *sorted(cloud.config_dir.rglob("*.conf"))]
    parser.read([str(f) for f in files if f.name != "supervisord.conf"])
    assert parser.has_section("storage_agent"), files
    return parser["storage_agent"]


def tgt_targets(cloud: Cloud) -> list[str]:
    """This deploy's tgtd's targets (tgtadm on its own control port)."""
    port = storage_settings(cloud)["tgt_control_port"]
    out = run("tgtadm", "-C", port, "--lld", "iscsi", "--op", "show", "--mode", "target").stdout
    return re.findall(r"^Target \d+: (\S+)", out, re.MULTILINE)


def volume_secrets(cloud: Cloud) -> list[str]:
    out = run("virsh", "-c", "qemu:///system", "secret-list").stdout
    return [line for line in out.splitlines() if f"{cloud.deploy_prefix}-volume-" in line]


def pool_files(cloud: Cloud) -> list[str]:
    """The pool's files, the agent's CHAP journal (``<prefix>-tgt-accounts.json``, made by
    the first export) aside."""
    pool = Path(storage_settings(cloud)["pool_path"])
    if not pool.exists():
        return []
    return sorted(p.name for p in pool.iterdir() if not p.name.endswith("-tgt-accounts.json"))


@contextlib.contextmanager
def cleanup(cloud: Cloud) -> Iterator[dict[str, list[str]]]:
    """Deletes what the test made (servers, volumes, snapshots, images), also on failure."""
    made: dict[str, list[str]] = {"server": [], "snapshot": [], "volume": [], "image": []}
    try:
        yield made
    finally:
        for server in made["server"]:
            cloud.openstack("server", "delete", "--wait", server, fmt=False, check=False,
                            timeout=300)
        for snap in made["snapshot"]:
            cloud.openstack("volume", "snapshot", "delete", snap, fmt=False, check=False)
        for snap in made["snapshot"]:
            with contextlib.suppress(BaseException):
                wait_for(f"snapshot {snap} deleted", lambda s=snap: cloud.api(  # type: ignore[misc]
                    "GET", "volumev3", f"/snapshots/{s}").status_code == 404, 120, 1)
        for vol in made["volume"]:
            cloud.openstack("volume", "delete", vol, fmt=False, check=False)
        for image in made["image"]:
            cloud.openstack("image", "delete", image, fmt=False, check=False)


def osc_volume(cloud: Cloud, *args: str) -> dict[str, Any]:
    return dict(cloud.openstack("volume", "create", *args))


# ---- the flows -----------------------------------------------------------------------------
def test_volumes_on_real_guests(cloud: Cloud) -> None:
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    setup = boot_tasks(cloud)[:6]  # image sdep-tiny, networks, router, sdep-ssh, sdep-key
    pool_before = pool_files(cloud)
    with cleanup(cloud) as made:
        # Guest A: the tiny image, with a floating IP (the cloud_server module).
        results, _ = cloud.play([*setup, {"stratus.cloud.cloud_server": {
            **auth, "name": "sdv-a", "image": "sdep-tiny", "flavor": "m1.tiny",
            "networks": ["sdep-net"], "key_name": "sdep-key", "config_drive": False,
            "security_groups": ["default", "sdep-ssh"], "floating_ip": "auto",
            "timeout": 300}}], "volumes-guest-a")
        server_a = results[f"r{len(setup)}"]["server"]
        made["server"].append(server_a["id"])
        addr_a = server_a["floating_ip"]

        # Two volumes through the openstackclient: empty, and from the tiny image.
        blank = osc_volume(cloud, "--size", "1", "sdv-blank")
        made["volume"].append(blank["id"])
        boot = osc_volume(cloud, "--size", "1", "--image", "sdep-tiny", "--bootable",
                          "sdv-boot")
        made["volume"].append(boot["id"])
        assert wait_volume(cloud, blank["id"], "available")["size"] == 1
        vol = wait_volume(cloud, boot["id"], "available")
        assert vol["bootable"] == "true", vol
        cloud.wait_ssh(addr_a)

        # Attach the empty volume to the running guest: a new virtio disk of 1 GiB.
        disks = guest_disks(cloud, addr_a)
        cloud.openstack("server", "add", "volume", server_a["id"], blank["id"], fmt=False)
        wait_volume(cloud, blank["id"], "in-use")
        disk, size = wait_new_disk(cloud, addr_a, disks)
        assert size == GIB, (disk, size)
        shown = cloud.openstack("server", "volume", "list", server_a["id"])
        assert [v["Volume ID"] for v in shown] == [blank["id"]], shown
        out = cloud.ssh(addr_a, f"mkdosfs /dev/{disk} >/dev/null && mkdir -p /mnt && "
                                f"mount -t vfat /dev/{disk} /mnt && "
                                f"dd if=/dev/urandom of={DATA} bs=64k count=16 2>/dev/null && "
                                f"md5sum {DATA} && umount /mnt && sync").stdout
        checksum = out.split()[0]
        assert re.fullmatch(r"[0-9a-f]{32}", checksum), out
        cloud.openstack("server", "remove", "volume", server_a["id"], blank["id"], fmt=False)
        wait_volume(cloud, blank["id"], "available")
        wait_disk_gone(cloud, addr_a, disk)

        # The detached volume as an image: active, the volume's size (raw).
        upload = cloud.openstack("image", "create", "--volume", blank["id"],
                                 "--disk-format", "raw", "--container-format", "bare",
                                 "sdv-upload")
        image_id = upload.get("image_id") or upload.get("id")
        assert image_id, upload
        made["image"].append(image_id)
        image = wait_for("the uploaded image to be active", lambda: (
            lambda i: i if i["status"] == "active" else None)(
                cloud.openstack("image", "show", image_id)), 240, 3)
        assert image["size"] == GIB and image["disk_format"] == "raw", image
        wait_volume(cloud, blank["id"], "available")

        # Extend while detached; snapshot; a volume from the snapshot.
        cloud.openstack("volume", "set", "--size", "2", blank["id"], fmt=False)
        assert wait_volume(cloud, blank["id"], "available")["size"] == 2
        snap = cloud.openstack("volume", "snapshot", "create", "--volume", blank["id"],
                               "sdv-snap")
        made["snapshot"].insert(0, snap["id"])
        wait_for("the snapshot to be available", lambda: cloud.api(
            "GET", "volumev3", f"/snapshots/{snap['id']}").json()["snapshot"]["status"]
            == "available", 120, 1)
        clone = osc_volume(cloud, "--snapshot", snap["id"], "--size", "2", "sdv-clone")
        made["volume"].append(clone["id"])

        # Guest B boots from the image volume (openstackclient), with a floating IP.
        server_b = cloud.openstack(
            "server", "create", "--volume", boot["id"], "--flavor", "m1.tiny",
            "--network", "sdep-net", "--key-name", "sdep-key", "--security-group", "sdep-ssh",
            "--wait", "sdv-b", timeout=400)
        made["server"].append(server_b["id"])
        assert server_b["status"] == "ACTIVE", server_b
        cloud.wait_console(server_b["id"], READY)
        assert cloud.server(server_b["id"])["image"] in ("", None, {})  # type: ignore[index]
        wait_volume(cloud, boot["id"], "in-use")
        fip = cloud.openstack("floating", "ip", "create", "public")
        cloud.openstack("server", "add", "floating", "ip", server_b["id"],
                        fip["floating_ip_address"], fmt=False)
        addr_b = fip["floating_ip_address"]
        cloud.wait_ssh(addr_b)
        assert "vda" in guest_disks(cloud, addr_b)

        # openstacksdk: the extended volume to guest B, seen at 2 GiB, the checksum back.
        conn = sdk(cloud)
        try:
            disks = guest_disks(cloud, addr_b)
            sdk_server = conn.compute.get_server(server_b["id"])
            sdk_volume = conn.get_volume_by_id(blank["id"])
            conn.attach_volume(sdk_server, sdk_volume, wait=True, timeout=180)
            disk, size = wait_new_disk(cloud, addr_b, disks)
            assert size == 2 * GIB, (disk, size)
            assert read_checksum(cloud, addr_b, disk) == checksum
            # Extend while attached (3.42): the running guest sees 3 GiB, the data stays.
            cloud.openstack("--os-volume-api-version", "3.42", "volume", "set", "--size", "3",
                            blank["id"], fmt=False)
            wait_for("the in-use volume extended", lambda: (lambda v: v if v and v[
                "status"] == "in-use" and v["size"] == 3 else None)(
                    volume(cloud, blank["id"])), 120, 1)
            wait_for("the running guest to see 3 GiB", lambda: guest_disks(
                cloud, addr_b).get(disk) == 3 * GIB, 150, 2)
            assert read_checksum(cloud, addr_b, disk) == checksum
            conn.detach_volume(sdk_server, conn.get_volume_by_id(blank["id"]), wait=True,
                               timeout=180)
        finally:
            conn.close()
        wait_volume(cloud, blank["id"], "available")
        wait_disk_gone(cloud, addr_b, disk)

        # A playbook: cloud_volume + cloud_volume_attachment (check mode, real, again).
        tasks: list[dict[str, Any]] = [
            {"stratus.cloud.cloud_volume": {**auth, "name": "sdv-clone", "size": 2}},
            {"stratus.cloud.cloud_volume_attachment": {**auth, "server": "sdv-a",
                                                       "volume": "sdv-clone"}},
        ]
        disks = guest_disks(cloud, addr_a)
        checked, output = cloud.play([{**t, "check_mode": True} for t in tasks],
                                     "volumes-play-check")
        assert not checked["r0"]["changed"], checked["r0"]
        assert checked["r1"]["changed"], checked["r1"]
        assert volume(cloud, clone["id"])["status"] == "available"  # type: ignore[index]
        applied, output = cloud.play(tasks, "volumes-play-1")
        assert applied["r1"]["changed"], applied["r1"]
        wait_volume(cloud, clone["id"], "in-use")
        disk, size = wait_new_disk(cloud, addr_a, disks)
        assert size == 2 * GIB
        assert read_checksum(cloud, addr_a, disk) == checksum
        _, output = cloud.play(tasks, "volumes-play-2")
        assert recap(output)["changed"] == 0, output[-3000:]
        cloud.play([{"stratus.cloud.cloud_volume_attachment": {
            **auth, "server": "sdv-a", "volume": "sdv-clone", "state": "absent"}}],
            "volumes-play-detach")
        wait_volume(cloud, clone["id"], "available")
        wait_disk_gone(cloud, addr_a, disk)

    # Everything deleted: no volume, target, secret, pool file or domain left.
    for vol_id in made["volume"]:
        wait_volume_gone(cloud, vol_id)
    wait_for("the deploy's tgt targets to go", lambda: tgt_targets(cloud) == [], 60, 1)
    wait_for("the volume secrets to go", lambda: volume_secrets(cloud) == [], 60, 1)
    wait_for("the pool files to go", lambda: pool_files(cloud) == pool_before, 60, 1)
    assert cloud.domains() == []


def test_storage_agent_killed_during_an_attach(cloud: Cloud) -> None:
    """kill -9 of the storage agent while an attach waits for its export: the volume ends
    in-use and readable in the guest, or available; nothing is leaked after the deletes."""
    auth = {"clouds_yaml": str(cloud.clouds_yaml)}
    setup = boot_tasks(cloud)[:6]
    pool_before = pool_files(cloud)
    with cleanup(cloud) as made:
        vol = osc_volume(cloud, "--size", "1", "sdv-crash")
        made["volume"].append(vol["id"])
        results, _ = cloud.play([*setup, {"stratus.cloud.cloud_server": {
            **auth, "name": "sdv-c", "image": "sdep-tiny", "flavor": "m1.tiny",
            "networks": ["sdep-net"], "key_name": "sdep-key", "config_drive": False,
            "security_groups": ["default", "sdep-ssh"], "floating_ip": "auto",
            "timeout": 300}}], "volumes-guest-c")
        server = results[f"r{len(setup)}"]["server"]
        made["server"].append(server["id"])
        wait_volume(cloud, vol["id"], "available")
        cloud.wait_ssh(server["floating_ip"])
        disks = guest_disks(cloud, server["floating_ip"])

        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(cloud.clouds_yaml)
        attach = subprocess.Popen(
            [str(BIN / "openstack"), "--os-cloud", "stratus", "server", "add", "volume",
             server["id"], vol["id"]], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for("the attach to start", lambda: volume(cloud, vol["id"])[  # type: ignore[index]
                "status"] != "available", 60, 0.2)
            pid = int(cloud.supervisorctl("pid", "stratus-storage-agent").stdout.strip())
            os.kill(pid, signal.SIGKILL)
            wait_for("the storage agent to die", lambda: not pid_alive(pid), 10, 0.2)
            started = cloud.supervisorctl("start", "stratus-storage-agent")
            assert started.returncode == 0 or "already started" in started.stdout, started
            output, _ = attach.communicate(timeout=300)
        finally:
            if attach.poll() is None:
                attach.kill()
                attach.wait()
        print(f"openstack server add volume after the kill: exit {attach.returncode} {output}")

        def settled() -> dict[str, Any] | None:
            got = volume(cloud, vol["id"])
            assert got is not None
            return got if got["status"] in ("in-use", "available", "error") else None
        final: dict[str, Any] = wait_for("the volume to settle", settled, 180, 2)
        print(f"volume after the storage agent's kill: {final['status']}")
        assert final["status"] in ("in-use", "available"), final
        if final["status"] == "in-use":
            disk, size = wait_new_disk(cloud, server["floating_ip"], disks)
            assert size == GIB
            cloud.ssh(server["floating_ip"], f"dd if=/dev/{disk} of=/dev/null bs=64k count=16")
            cloud.openstack("server", "remove", "volume", server["id"], vol["id"], fmt=False)
            wait_volume(cloud, vol["id"], "available")
    for vol_id in made["volume"]:
        wait_volume_gone(cloud, vol_id)
    wait_for("the deploy's tgt targets to go", lambda: tgt_targets(cloud) == [], 60, 1)
    wait_for("the volume secrets to go", lambda: volume_secrets(cloud) == [], 60, 1)
    wait_for("the pool files to go", lambda: pool_files(cloud) == pool_before, 60, 1)
    assert cloud.domains() == []

