"""The Debian test guest (tests/images/build-debian.sh) runs real cloud-init.

One boot under QEMU/TCG (about a minute): metadata, network description and
cloud-config user data on a config-2 drive, as Stratus's compute agent
builds it, on a disk grown as a flavor's would be; then cloud-init's own
result file, the hostname, the user-data effects, the grown root filesystem
and SSH with the injected key as the image's default user.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from guest_vm import QemuGuest, make_config_drive, write_metadata_tree

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAC = "fa:16:3e:12:34:56"
CLOUD_INIT_FINISHED = re.compile(r"Cloud-init v\. \S+ finished at", re.M)
DEFAULT_USER = "debian"


def test_cloud_init_configures_the_debian_guest_from_a_config_drive(
    debian_image: Path, ssh_key: Path, guest: QemuGuest, tmp_path: Path
) -> None:
    server_id = str(uuid.uuid4())
    public_key = ssh_key.with_suffix(".pub").read_text().strip()
    meta_data = {
        "uuid": server_id,
        "name": "deb-one",
        "hostname": "deb-one",
        "launch_index": 0,
        "availability_zone": "nova",
        "project_id": "6d6e1e2f0a8b4b3f9c1f2e3d4c5b6a79",
        "public_keys": {"test": public_key + "\n"},
        "keys": [{"name": "test", "type": "ssh", "data": public_key + "\n"}],
        "meta": {},
    }
    network_data = {
        "links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": MAC, "mtu": 1500}],
        "networks": [
            {"id": "network0", "type": "ipv4_dhcp", "link": "tap0",
             "network_id": str(uuid.uuid4())},
        ],
        "services": [],
    }
    user_data = (
        "#cloud-config\n"
        "write_files:\n"
        "  - path: /etc/stratus-test\n"
        "    content: written by cloud-init\n"
        "runcmd:\n"
        "  - [sh, -c, 'echo STRATUS-DEBIAN: runcmd ran > /dev/ttyS0']\n"
    )
    tree = write_metadata_tree(tmp_path / "cd", meta_data, user_data, network_data)
    drive = make_config_drive(tree, tmp_path / "config.iso")

    # A 2 GiB disk, as a flavor would give: growpart + resizefs fill it.
    guest.start(debian_image, cdrom=drive, memory_mib=1024, mac=MAC, disk_size="2G")
    guest.wait_for(CLOUD_INIT_FINISHED, 600)
    finished_after = guest.elapsed()
    assert "STRATUS-DEBIAN: runcmd ran" in guest.console()

    done = guest.ssh(
        ssh_key,
        "cat /run/cloud-init/result.json; echo ===; hostname; cat /etc/stratus-test; "
        "echo; cat /var/lib/cloud/data/instance-id; echo; df -m --output=size / | tail -n 1",
        user=DEFAULT_USER,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result_text, rest = done.stdout.split("===\n", 1)
    result = json.loads(result_text)["v1"]
    assert result["errors"] == [], result
    assert result["datasource"].startswith("DataSourceConfigDrive"), result
    lines = [line for line in rest.split("\n") if line.strip()]
    assert lines[:3] == ["deb-one", "written by cloud-init", server_id]
    root_mib = int(lines[3].strip())
    assert root_mib > 1500, f"root filesystem not grown to the 2 GiB disk: {root_mib} MiB"
    print(f"debian guest: cloud-init finished {finished_after:.1f} s after qemu started")
