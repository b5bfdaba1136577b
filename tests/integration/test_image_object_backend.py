"""stratus-image keeping its data in object storage (``[image] store = object``): real
stratus-identity, stratus-object (three devices) and stratus-image processes.

``openstack image create/save/delete`` and openstacksdk's upload/download go through the
image API; the data is one object in the image service's own account (container
``zob-images``), nothing of it stays under images_dir, a Range request is answered from
the object, a second image service on the same database serves the same images, deleting
an image deletes its object, and an upload refused by the inspection or by a stopped
object store leaves the image queued and nothing stored anywhere."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import BIN, IdentityServer, ImageServer, password_token
from object_api import ObjectServer

pytestmark = [pytest.mark.integration]

CONTAINER = "zob-images"
SERVICE_USER = "zob-image"


@dataclass
class Stack:
    identity: IdentityServer
    objects: ObjectServer
    image: ImageServer
    root: Path
    password: str

    def account(self) -> tuple[str, str]:
        """The image service user's token and its account's URL."""
        token = password_token(self.identity.url, SERVICE_USER, self.password, "service")
        body = httpx.get(f"{self.identity.url}/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
        return token, f"{self.objects.url}/v1/AUTH_{body['token']['project']['id']}"

    def stored(self) -> list[dict[str, Any]]:
        """The objects of the image container (empty when it does not exist)."""
        token, account = self.account()
        resp = httpx.get(f"{account}/{CONTAINER}", params={"format": "json"},
                         headers={"X-Auth-Token": token})
        assert resp.status_code in (200, 204, 404), resp.text
        return list(resp.json()) if resp.status_code == 200 else []

    def staged(self) -> list[str]:
        """Files under the image service's images_dir (tmp/ and blobs/)."""
        return sorted(str(p.relative_to(self.image.images_dir))
                      for p in self.image.images_dir.rglob("*") if p.is_file()
                      and p.name != ".lock")


def image_env(objects: ObjectServer, password: str) -> dict[str, str]:
    return {"STRATUS_IMAGE__STORE": "object",
            "STRATUS_IMAGE__OBJECT_URL": objects.url,
            "STRATUS_IMAGE__OBJECT_CONTAINER": CONTAINER,
            "STRATUS_IMAGE__USERNAME": SERVICE_USER,
            "STRATUS_IMAGE__PASSWORD": password,
            "STRATUS_IMAGE__PROJECT_NAME": "service",
            "STRATUS_IMAGE__MAX_IMAGE_SIZE": str(64 * 1024 * 1024)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("zob-image-object")
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    password = "zob-" + secrets.token_urlsafe(12)
    subprocess.run([str(BIN / "stratus-manage"), "service-user", "ensure", "--name",
                    SERVICE_USER, "--project", "service", "--role", "admin"],
                   env={**identity.env, "STRATUS_SERVICE_PASSWORD": password},
                   capture_output=True, text=True, check=True)
    identity.start()
    objects = ObjectServer(root / "object", identity)
    image = ImageServer(root / "image", identity, extra_env=image_env(objects, password))
    try:
        objects.prepare()
        objects.start()
        image.prepare()
        image.start()
        yield Stack(identity, objects, image, root, password)
    finally:
        image.stop()
        objects.stop()
        identity.stop()
    for log in (image.log(), objects.log()):
        assert "Traceback" not in log, log[-3000:]


def osc(identity: IdentityServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(identity.clouds_yaml()), OS_CLOUD="stratus")
    return subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_openstack_image_create_save_delete_keep_the_data_in_object_storage(
        stack: Stack, tmp_path: Path) -> None:
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    made = osc(stack.identity, "image", "create", "--disk-format", "raw", "--container-format",
               "bare", "--file", str(data), "zob-osc", "-f", "value", "-c", "id")
    assert made.returncode == 0, made.stderr
    image_id = made.stdout.strip()
    stored = stack.stored()
    assert len(stored) == 1, stored
    assert stored[0]["bytes"] == data.stat().st_size
    assert stored[0]["hash"] == md5_of(data)
    assert stack.staged() == [], "the data must not stay under images_dir"
    saved = tmp_path / "saved.raw"
    done = osc(stack.identity, "image", "save", "--file", str(saved), image_id)
    assert done.returncode == 0, done.stderr
    assert saved.read_bytes() == data.read_bytes()
    # a Range request is answered from the object
    token = stack.identity.token()
    resp = httpx.get(f"{stack.image.url}/v2/images/{image_id}/file",
                     headers={"X-Auth-Token": token, "Range": "bytes=1000-1999"})
    assert resp.status_code == 206
    assert resp.content == data.read_bytes()[1000:2000]
    done = osc(stack.identity, "image", "delete", image_id)
    assert done.returncode == 0, done.stderr
    assert stack.stored() == [], "deleting the image must delete its object"


def test_openstacksdk_upload_download_and_a_second_image_service(stack: Stack,
                                                                 tmp_path: Path) -> None:
    import openstack

    payload = os.urandom(5 * 1024 * 1024 + 3)
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(stack.identity.clouds_yaml())
    second = ImageServer(stack.root / "image-2", stack.identity,
                         database_url=f"sqlite:///{stack.image.root}/image.sqlite",
                         extra_env=image_env(stack.objects, stack.password))
    try:
        conn = openstack.connect(cloud="stratus")
        image = conn.image.create_image(name="zob-sdk", data=payload, disk_format="raw",
                                        container_format="bare", wait=True)
        assert conn.image.get_image(image.id).checksum == hashlib.md5(
            payload, usedforsecurity=False).hexdigest()
        assert conn.image.download_image(image).content == payload
        # another controller: its own images_dir (empty), the same database and account
        second.root.mkdir(parents=True)
        (second.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        second.start()
        resp = httpx.get(f"{second.url}/v2/images/{image.id}/file",
                         headers={"X-Auth-Token": stack.identity.token()}, timeout=60)
        assert resp.status_code == 200 and resp.content == payload
        conn.image.delete_image(image)
        assert stack.stored() == []
        conn.close()
    finally:
        second.stop()
        os.environ.pop("OS_CLIENT_CONFIG_FILE", None)


def _queued_image(stack: Stack, name: str, disk_format: str) -> tuple[str, dict[str, str]]:
    headers = {"X-Auth-Token": stack.identity.token()}
    resp = httpx.post(f"{stack.image.url}/v2/images", headers=headers, json={
        "name": name, "disk_format": disk_format, "container_format": "bare"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"], headers


def test_refused_upload_leaves_nothing(stack: Stack) -> None:
    image_id, headers = _queued_image(stack, "zob-bad", "qcow2")
    resp = httpx.put(f"{stack.image.url}/v2/images/{image_id}/file",
                     headers={**headers, "Content-Type": "application/octet-stream"},
                     content=b"QFI\xfb" + os.urandom(4096))  # a qcow2 header that is not
    assert resp.status_code == 400, resp.text
    shown = httpx.get(f"{stack.image.url}/v2/images/{image_id}", headers=headers).json()
    assert shown["status"] == "queued"
    assert stack.stored() == [] and stack.staged() == []
    httpx.delete(f"{stack.image.url}/v2/images/{image_id}", headers=headers)


def test_upload_while_object_storage_is_down_leaves_nothing(stack: Stack) -> None:
    image_id, headers = _queued_image(stack, "zob-down", "raw")
    stack.objects.stop()
    try:
        resp = httpx.put(f"{stack.image.url}/v2/images/{image_id}/file",
                         headers={**headers, "Content-Type": "application/octet-stream"},
                         content=os.urandom(1024 * 1024), timeout=120)
    finally:
        stack.objects.start()
    assert resp.status_code == 503, resp.text
    assert "object storage" in resp.text and "try again" in resp.text
    shown = httpx.get(f"{stack.image.url}/v2/images/{image_id}", headers=headers).json()
    assert shown["status"] == "queued", "the same image can be uploaded again"
    assert stack.stored() == [] and stack.staged() == []
    # and once object storage is back, the same image takes its data
    payload = os.urandom(2 * 1024 * 1024)
    resp = httpx.put(f"{stack.image.url}/v2/images/{image_id}/file",
                     headers={**headers, "Content-Type": "application/octet-stream"},
                     content=payload, timeout=120)
    assert resp.status_code == 204, resp.text
    assert [o["bytes"] for o in stack.stored()] == [len(payload)]
    httpx.delete(f"{stack.image.url}/v2/images/{image_id}", headers=headers)
    assert stack.stored() == []
