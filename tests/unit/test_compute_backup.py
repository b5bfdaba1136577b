"""The createBackup server action: a snapshot image with Nova's backup properties, its
answers at each microversion (checked against Tempest's schema), Nova's 400/403/404/409,
and the rotation once an upload is reported done."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_compute_schemas import check
from test_compute_volumes_api import IMAGE_ID, FakeVolumes

from compute_api import ADMIN, ALICE, BOB, READER, ComputeApi, in_process

pytestmark = pytest.mark.unit
MISSING = "99999999-9999-4999-8999-999999999999"
STAMPS = itertools.count(1)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def active(api: ComputeApi) -> str:
    sid: str = api.boot()["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def backup(api: ComputeApi, sid: str, version: str = "2.47", token: str = ALICE,
           **arg: Any) -> httpx.Response:
    body = {"name": "s8u-bk", "backup_type": "daily", "rotation": 2, **arg}
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version=version,
                    json={"createBackup": {k: v for k, v in body.items() if v is not None}})


def made(api: ComputeApi, sid: str, **arg: Any) -> str:
    """A backup whose upload the agent reports done; its image id."""
    resp = backup(api, sid, **arg)
    assert resp.status_code == 202, resp.text
    image_id = str(resp.json()["image_id"])
    api.fake.images[image_id]["created_at"] = f"2026-12-07T07:00:{next(STAMPS):02d}Z"
    api.fake.images[image_id]["status"] = "active"
    api.report("cmp1", sid, snapshots_done=[image_id])
    return image_id


def backups(api: ComputeApi, sid: str, kind: str = "daily") -> list[str]:
    return [i for i, img in api.fake.images.items() if img.get("instance_uuid") == sid
            and img.get("image_type") == "backup" and img.get("backup_type") == kind]


def test_image_with_backup_properties_2_47_schema(api: ComputeApi) -> None:
    sid = active(api)
    resp = backup(api, sid, metadata={"k": "v"})
    body = check(resp, "servers", "create_backup", "2.47")
    assert "location" not in {k.lower() for k in resp.headers}
    image = api.fake.images[body["image_id"]]
    assert (image["image_type"], image["backup_type"], image["instance_uuid"],
            image["name"], image["k"]) == ("backup", "daily", sid, "s8u-bk", "v")
    srv = api.server(sid)
    assert srv["OS-EXT-STS:task_state"] == "image_uploading"
    actions = api.ok("GET", f"/v2.1/servers/{sid}/os-instance-actions")["instanceActions"]
    assert actions[0]["action"] == "createBackup"


def test_below_2_45_location_unless_rotation_0(api: ComputeApi) -> None:
    sid = active(api)
    resp = backup(api, sid, version="2.1")
    check(resp, "servers", "create_backup", "2.1")
    assert resp.headers["Location"].rsplit("/", 1)[1] in api.fake.images
    api.report("cmp1", sid, snapshots_done=[resp.headers["Location"].rsplit("/", 1)[1]])
    resp = backup(api, sid, version="2.1", rotation=0)
    check(resp, "servers", "create_backup", "2.1")
    assert "location" not in {k.lower() for k in resp.headers}


def test_rotation_deletes_the_oldest_after_the_upload(api: ComputeApi) -> None:
    sid = active(api)
    first, second = made(api, sid), made(api, sid)
    weekly = made(api, sid, backup_type="weekly", rotation=1)
    assert sorted(backups(api, sid)) == sorted([first, second])
    resp = backup(api, sid)  # the third: the oldest goes once it is uploaded
    third = resp.json()["image_id"]
    api.fake.images[third]["created_at"] = "2026-12-07T07:01:00Z"
    assert sorted(backups(api, sid)) == sorted([first, second, third])
    api.report("cmp1", sid, snapshots_done=[third])
    assert sorted(backups(api, sid)) == sorted([second, third])
    assert backups(api, sid, "weekly") == [weekly]  # another type is not rotated
    assert api.server(sid)["OS-EXT-STS:task_state"] is None


def test_rotation_0_deletes_every_backup_of_the_type(api: ComputeApi) -> None:
    sid = active(api)
    made(api, sid)
    made(api, sid, rotation=0)
    assert backups(api, sid) == []


@pytest.mark.parametrize("arg", [
    {"rotation": None}, {"rotation": -1}, {"rotation": "x"}, {"backup_type": None},
    {"name": None}, {"name": ""}, {"extra": 1}, {"metadata": "no"}])
def test_bad_bodies_are_400(api: ComputeApi, arg: dict[str, Any]) -> None:
    resp = backup(api, active(api), **arg)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"]


def test_404_403_409(api: ComputeApi) -> None:
    assert backup(api, MISSING).status_code == 404
    sid = active(api)
    assert backup(api, sid, token=BOB).status_code == 404  # another project's server
    resp = backup(api, sid, token=READER)  # a reader of the project: the policy's 403
    assert resp.status_code == 403 and "os-create-backup" in resp.text
    assert backup(api, sid, token=ADMIN).status_code == 202  # admin may
    resp = backup(api, sid)  # the first is still uploading
    assert resp.status_code == 409 and "createBackup" in resp.json()[
        "conflictingRequest"]["message"]


def test_volume_backed_server_is_400(api: ComputeApi) -> None:
    api.fake.volumes = FakeVolumes()
    bdm = {"uuid": IMAGE_ID, "source_type": "image", "destination_type": "volume",
           "boot_index": 0, "volume_size": 1, "delete_on_termination": True}
    sid = api.boot(imageRef="", block_device_mapping_v2=[bdm])["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    resp = backup(api, sid)
    assert resp.status_code == 400 and "volume-backed" in resp.text
    assert api.server(sid)["OS-EXT-STS:task_state"] is None
