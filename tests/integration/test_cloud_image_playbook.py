"""cloud_image and cloud_image_info in real ansible-playbook runs against real services.

A stratus-identity and a stratus-image run as processes; the collection is
found through ANSIBLE_COLLECTIONS_PATH (a temporary ansible_collections/
stratus/cloud symlink to this repository); credentials come from the
clouds.yaml the identity helper writes. Every step runs four times: check
mode (must predict a change and make none), for real (changed), for real
again (not changed) and in check mode again (not changed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from helpers import IdentityServer, ImageServer

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Stack:
    def __init__(self, root: Path, identity: IdentityServer, image: ImageServer) -> None:
        self.root = root
        self.identity = identity
        self.image = image
        self.collections = root / "collections"
        (self.collections / "ansible_collections" / "stratus").mkdir(parents=True)
        (self.collections / "ansible_collections" / "stratus" / "cloud").symlink_to(REPO)
        self.clouds_yaml = identity.clouds_yaml()
        self.runs = 0

    def images(self, name: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.image.url}/v2/images", params={"name": name},
                         headers={"X-Auth-Token": self.identity.token()})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["images"])

    def play(self, tasks: list[dict[str, Any]], check: bool = False,
             expect_failure: bool = False) -> dict[str, Any]:
        """Run the tasks (each registered as r<i>); return the registered results."""
        self.runs += 1
        out = self.root / f"results-{self.runs}.json"
        body = []
        for i, task in enumerate(tasks):
            body.append({**task, "register": f"r{i}", "ignore_errors": expect_failure})
        names = ", ".join(f"'r{i}': r{i}" for i in range(len(tasks)))
        body.append({
            "name": "Save the results",
            "ansible.builtin.copy": {"content": "{{ {" + names + "} | to_json }}",
                                     "dest": str(out), "mode": "0600"},
            "check_mode": False, "diff": False,
        })
        playbook = self.root / f"play-{self.runs}.yml"
        playbook.write_text(yaml.safe_dump([{
            "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": body,
        }], sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
        })
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "--diff"]
        if check:
            cmd.append("--check")
        done = subprocess.run(cmd, env=env, cwd=self.root, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"ansible-playbook failed:\n{done.stdout[-5000:]}"
        return dict(json.loads(out.read_text()))

    def converge(self, tasks: list[dict[str, Any]], changes: list[bool] | None = None
                 ) -> list[dict[str, Any]]:
        """Check mode, then twice for real: check mode predicts the first real run's
        ``changed`` and diff and changes nothing; the second real run changes nothing.
        ``changes`` says which tasks change (default: all)."""
        expected = changes or [True] * len(tasks)
        before = self.state()
        checked = self.play(tasks, check=True)
        assert [checked[f"r{i}"]["changed"] for i in range(len(tasks))] == expected, checked
        assert self.state() == before, "check mode changed something"
        real = self.play(tasks)
        for key, result in real.items():
            assert result["changed"] == checked[key]["changed"], result
            assert result.get("diff") == checked[key].get("diff"), "check mode saw another diff"
        again = self.play(tasks)
        assert not any(r["changed"] for r in again.values()), again
        return [real[f"r{i}"] for i in range(len(tasks))]

    def state(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.image.url}/v2/images", params={"limit": "1000"},
                         headers={"X-Auth-Token": self.identity.token()})
        return sorted(resp.json()["images"], key=lambda i: i["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("cloud-image-module")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    image = ImageServer(root / "image", identity)
    try:
        image.prepare()
        image.start()
        yield Stack(root, identity, image)
    finally:
        image.stop()
        identity.stop()


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("module-images") / "small.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x61 0 1M", str(path)],
                   check=True, capture_output=True)
    return path


def image_task(**options: Any) -> dict[str, Any]:
    return {"stratus.cloud.cloud_image": options}


def info_task(**options: Any) -> dict[str, Any]:
    return {"stratus.cloud.cloud_image_info": options}


def test_cloud_image_converges_in_check_mode_and_for_real(
    stack: Stack, qcow2: Path, tmp_path: Path
) -> None:
    checksum = hashlib.md5(qcow2.read_bytes(), usedforsecurity=False).hexdigest()
    # Step 1: an image with data and attributes, and one without data yet.
    made, empty = stack.converge([
        image_task(name="module-image", filename=str(qcow2), disk_format="qcow2", min_ram=64,
                   properties={"os_distro": "busybox", "hw_qemu_guest_agent": True},
                   tags=["test"]),
        image_task(name="module-empty", disk_format="raw"),
    ])
    image = made["image"]
    assert image["status"] == "active" and image["checksum"] == checksum
    assert image["os_distro"] == "busybox" and image["hw_qemu_guest_agent"] == "true"
    assert made["diff"]["before"] == {} and made["diff"]["after"]["checksum"] == checksum
    assert [i["id"] for i in stack.images("module-image")] == [image["id"]]
    assert empty["image"]["status"] == "queued"

    # Step 2: changed attributes are patched, the data is not sent again; the empty
    # image gets its data; the info module finds images by name, ID and filters.
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\x00" * 65536)
    changed, filled, *info = stack.converge([
        image_task(name="module-image", filename=str(qcow2), min_ram=128,
                   visibility="private", tags=["test", "small"],
                   properties={"os_distro": "tiny"}),
        image_task(name="module-empty", filename=str(raw), disk_format="raw"),
        info_task(image="module-image"),
        info_task(image=image["id"]),
        info_task(filters={"tag": ["small", "test"], "os_distro": "tiny"}),
        info_task(image="no-such-image"),
        info_task(filters={"status": "killed"}),
    ], changes=[True, True, False, False, False, False, False])
    assert changed["diff"]["before"] == {
        "visibility": "shared", "min_ram": 64, "tags": ["test"],
        "properties": {"os_distro": "busybox"}}
    assert changed["image"]["id"] == image["id"], "the data was not uploaded again"
    assert changed["image"]["hw_qemu_guest_agent"] == "true", "other properties stay"
    assert filled["image"]["status"] == "active"
    assert filled["diff"]["before"] == {"status": "queued", "checksum": None}
    assert [i["id"] for i in info[0]["images"]] == [image["id"]]
    assert [i["id"] for i in info[1]["images"]] == [image["id"]]
    assert [i["id"] for i in info[2]["images"]] == [image["id"]]
    assert info[3]["images"] == [] and info[4]["images"] == []

    # Step 3: both go.
    gone, _ = stack.converge([image_task(name="module-image", state="absent"),
                              image_task(name="module-empty", state="absent")])
    assert gone["diff"]["before"]["images"][0]["id"] == image["id"]
    assert stack.images("module-image") == [] and stack.images("module-empty") == []


def test_refusals_fail_clearly_and_leave_nothing(stack: Stack, qcow2: Path,
                                                 tmp_path: Path) -> None:
    other = tmp_path / "other.raw"
    other.write_bytes(b"\x00" * 4096)
    stack.play([image_task(name="fixed-data", filename=str(qcow2))])
    results = stack.play([
        image_task(name="declared-raw", filename=str(qcow2), disk_format="raw"),
        image_task(name="no-file", filename=str(tmp_path / "nope")),
        image_task(name="x", cloud="elsewhere"),
        image_task(name="x", clouds_yaml=str(tmp_path / "none.yaml")),
        image_task(name="x", auth={"auth_url": stack.identity.url, "username": "admin",
                                   "password": "wrong", "project_name": "admin"}),
        image_task(name="x", visibility="everyone"),
        image_task(name="fixed-data", filename=str(other), disk_format="raw"),
    ], expect_failure=True)
    messages = [results[f"r{i}"].get("msg", "") for i in range(7)]
    assert all(results[f"r{i}"]["failed"] for i in range(7)), results
    assert "is a qcow2 image, but disk_format is raw" in messages[0]
    assert "does not exist or is not a file" in messages[1]
    assert "Cloud 'elsewhere' is not in" in messages[2]
    assert "Cannot read" in messages[3]
    assert "401" in messages[4] and "wrong" not in json.dumps(results["r4"])
    assert "value of visibility must be one of" in messages[5]
    assert "the data of an image cannot change" in messages[6]
    assert stack.images("declared-raw") == [], "the image made by the failed run is removed"
    assert [i["status"] for i in stack.images("fixed-data")] == ["active"]
