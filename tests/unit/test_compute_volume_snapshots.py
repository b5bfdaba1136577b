"""createImage of a volume-backed server (compute/volume_snapshots.py) on the compute API
in-process with a fake volume API with snapshots: the volume snapshots and the image that
maps them, booting a server from that image, and failures that leave nothing made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_volumes_api import FakeVolumes

from compute_api import ADMIN, ALICE, BOB, ComputeApi, in_process
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest
from stratus.compute import boot_volumes
from stratus.compute.boot_volumes import BootDevice
from stratus.compute.volume_snapshots import image_block_devices, merge_devices

pytestmark = pytest.mark.unit
VOL = "5b8b0000-0000-4000-8000-000000000001"  # s8b: this test's ids
VOL2 = "5b8b0000-0000-4000-8000-000000000002"


class SnapshotVolumes(FakeVolumes):
    """The fake volume API with Cinder's snapshots: made ``creating``, available after
    ``ready_after`` reads; ``fail_snapshot_of`` refuses a volume's snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.fail_snapshot_of: dict[str, ServiceError] = {}
        self.ready_after = 0

    def volume(self, vid: str, project: str = "p-alice", size: int = 1) -> None:
        super().volume(vid, project)
        self.volumes[vid].update(size=size, volume_image_metadata={
            "image_id": "img-origin", "image_name": "cirros", "disk_format": "raw",
            "container_format": "bare", "min_ram": "64", "hw_disk_bus": "virtio"})

    def create_volume(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        snap = self.snapshots.get(str(body.get("snapshot_id")))
        if snap is not None and snap["status"] != "available":
            raise ServiceError("Originating snapshot status must be available", status=400)
        return super().create_volume(project, body)

    def create_snapshot(self, project: str, volume_id: str, name: str, description: str
                        ) -> dict[str, Any]:
        self._check()
        if volume_id in self.fail_snapshot_of:
            raise self.fail_snapshot_of[volume_id]
        sid = f"snap-{next(self._ids)}"
        self.snapshots[sid] = {"id": sid, "volume_id": volume_id, "name": name,
                               "status": "creating", "project": project,
                               "size": self.volumes[volume_id]["size"], "reads": 0}
        self.calls.append(("create_snapshot", volume_id))
        return {k: v for k, v in self.snapshots[sid].items() if k != "reads"}

    def get_snapshot(self, project: str, snapshot_id: str) -> dict[str, Any]:
        self._check()
        snap = self.snapshots.get(snapshot_id)
        if snap is None:
            raise ServiceError("not found", status=404)
        snap["reads"] += 1
        if snap["status"] == "creating" and snap["reads"] > self.ready_after:
            snap["status"] = "available"
        return {**snap, "os-extended-snapshot-attributes:project_id": snap["project"]}

    def force_delete_snapshot(self, project: str, snapshot_id: str) -> None:
        self.calls.append(("force_delete_snapshot", snapshot_id))
        self.snapshots.pop(snapshot_id, None)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ComputeApi]:
    monkeypatch.setattr(boot_volumes, "POLL", 0.0)
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1", host_ip="192.0.2.10")
        vols = SnapshotVolumes()
        vols.volume(VOL, size=2)
        vols.volume(VOL2, size=3)
        client.fake.volumes = vols
        yield client


def vols(api: ComputeApi) -> SnapshotVolumes:
    found: SnapshotVolumes = api.fake.volumes
    return found


def volume_backed(api: ComputeApi) -> str:
    """An ACTIVE server booted from VOL with VOL2 as a second disk, both plugged."""
    sid: str = api.boot(imageRef="", block_device_mapping_v2=[
        {"uuid": VOL, "source_type": "volume", "destination_type": "volume",
         "boot_index": 0, "delete_on_termination": True},
        {"uuid": VOL2, "source_type": "volume", "destination_type": "volume",
         "boot_index": -1}])["server"]["id"]
    plugged = [b["attachment_id"] for b in assigned(api, sid)["block_devices"]]
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=plugged)
    return sid


def assigned(api: ComputeApi, sid: str) -> dict[str, Any]:
    servers = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    found: dict[str, Any] = next(s for s in servers if s["id"] == sid)
    return found


def create_image(api: ComputeApi, sid: str, token: str = ALICE) -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, version="2.45",
                    json={"createImage": {"name": "s8b-snap", "metadata": {"k": "v"}}})


def last_event(api: ComputeApi, sid: str) -> dict[str, Any]:
    listed = api.ok("GET", f"/v2.1/servers/{sid}/os-instance-actions", ADMIN,
                    version="2.51")["instanceActions"]
    assert listed[0]["action"] == "createImage"
    shown = api.ok("GET", f"/v2.1/servers/{sid}/os-instance-actions/"
                          f"{listed[0]['request_id']}", ADMIN, version="2.51")
    [event] = shown["instanceAction"]["events"]
    return dict(event)


def test_volume_backed_snapshot_metadata_wins_but_not_over_the_mapping(
        api: ComputeApi) -> None:
    sid = volume_backed(api)
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, json={"createImage": {
        "name": "s8t-snap", "metadata": {"image_type": "test", "bdm_v2": "False",
                                         "root_device_name": "/dev/sdz"}}})
    assert resp.status_code == 202, resp.text
    image = api.fake.images[resp.json()["image_id"]]
    assert image["image_type"] == "test" and image["instance_uuid"] == sid
    assert (image["bdm_v2"], image["root_device_name"]) == ("True", "/dev/vda")


def test_snapshot_of_a_volume_backed_server_maps_its_volume_snapshots(api: ComputeApi
                                                                     ) -> None:
    sid = volume_backed(api)
    resp = create_image(api, sid)
    assert resp.status_code == 202, resp.text
    image_id = resp.json()["image_id"]
    assert resp.headers["location"].endswith(f"/v2/images/{image_id}")
    image = api.fake.images[image_id]
    # active at once, no data: the volumes hold it
    assert image["status"] == "active" and image["size"] == 0
    assert image["bdm_v2"] == "True" and image["root_device_name"] == "/dev/vda"
    assert image["instance_uuid"] == sid and image["image_type"] == "snapshot"
    assert image["k"] == "v" and image["name"] == "s8b-snap"
    # the root volume's image metadata describes the image; its origin keys do not, and
    # the formats are Nova's fixed qcow2/bare (there is no data to describe)
    assert (image["disk_format"], image["container_format"], image["min_ram"],
            image["hw_disk_bus"]) == ("qcow2", "bare", 64, "virtio")
    assert "image_id" not in image and "image_name" not in image
    snaps = vols(api).snapshots
    assert sorted(s["volume_id"] for s in snaps.values()) == [VOL, VOL2]
    bdm = json.loads(image["block_device_mapping"])
    by_volume = {snaps[b["snapshot_id"]]["volume_id"]: b for b in bdm}
    root, data = by_volume[VOL], by_volume[VOL2]
    assert bdm[0] is root  # the boot volume first
    assert (root["source_type"], root["destination_type"], root["boot_index"],
            root["volume_size"], root["delete_on_termination"], root["device_name"]) == (
        "snapshot", "volume", 0, 2, True, "/dev/vda")
    assert (data["boot_index"], data["volume_size"], data["delete_on_termination"],
            data["device_name"]) == (None, 3, False, "/dev/vdb")
    # the step is over (no agent upload), the action succeeded
    shown = api.server(sid)
    assert shown["OS-EXT-STS:task_state"] is None and shown["status"] == "ACTIVE"
    assert assigned(api, sid)["snapshots"] == []
    assert last_event(api, sid)["result"] == "Success"
    # deleting the image leaves the volume snapshots (their owner deletes them)
    api.fake.delete_image(ALICE, image_id)
    assert len(vols(api).snapshots) == 2


def test_a_server_booted_from_that_image_gets_volumes_from_the_snapshots(api: ComputeApi
                                                                        ) -> None:
    sid = volume_backed(api)
    image_id = create_image(api, sid).json()["image_id"]
    vols(api).ready_after = 2  # the snapshots are still being made: the boot waits
    new = api.boot(imageRef=image_id)["server"]["id"]
    made = {v["source"]["snapshot_id"]: v for v in vols(api).volumes.values()
            if v.get("source", {}).get("snapshot_id")}
    assert sorted(made) == sorted(vols(api).snapshots)
    shown = api.server(new)
    assert shown["image"] == ""  # volume-backed
    attached = {v["id"] for v in shown["os-extended-volumes:volumes_attached"]}
    assert attached == {v["id"] for v in made.values()}
    devices = assigned(api, new)["block_devices"]
    root_snap = next(k for k, s in vols(api).snapshots.items() if s["volume_id"] == VOL)
    assert [(d["device"], d["boot_index"]) for d in devices] == [("vda", 0), ("vdb", None)]
    api.report("cmp1", new, vm_state="active", power_state=1,
               volumes=[d["attachment_id"] for d in devices])
    # delete: the root made from the snapshot goes (delete_on_termination), the other stays
    api.ok("DELETE", f"/v2.1/servers/{new}", ALICE, status=204)
    api.report("cmp1", new, deleted=True)
    assert made[root_snap]["id"] not in vols(api).volumes
    other = next(v["id"] for k, v in made.items() if k != root_snap)
    assert other in vols(api).volumes


def test_a_requested_root_replaces_the_images_and_bad_mappings_are_400(api: ComputeApi
                                                                       ) -> None:
    sid = volume_backed(api)
    image_id = create_image(api, sid).json()["image_id"]
    api.boot(imageRef=image_id, block_device_mapping_v2=[
        {"uuid": VOL, "source_type": "volume", "destination_type": "volume",
         "boot_index": 0}], status=400)  # VOL is in use: refused, nothing made
    assert not [v for v in vols(api).volumes.values() if v.get("source")]
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": image_id, "flavorRef": "1", "networks": "none",
        "min_count": 2, "max_count": 2}})
    assert resp.status_code == 400 and "max_count 1" in resp.text
    # another project cannot boot from Alice's snapshots through a copy of the image
    api.fake.images[image_id].update(visibility="public")
    resp = api.call("POST", "/v2.1/servers", BOB, json={"server": {
        "name": "vm", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 400 and "could not be found" in resp.text
    api.fake.images[image_id]["block_device_mapping"] = "[not json"
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 400 and f"Image {image_id}'s block_device_mapping" in resp.text


def test_merge_and_image_devices() -> None:
    image = {"id": "i", "properties": {"block_device_mapping": json.dumps([
        {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": "s1",
         "boot_index": 0, "delete_on_termination": True, "device_name": "/dev/vda",
         "volume_size": 2},
        {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": "s2",
         "boot_index": None, "device_name": "/dev/vdb"},
        {"source_type": "blank", "destination_type": "local", "guest_format": "swap",
         "boot_index": -1}])}}
    devices = image_block_devices(image)
    assert [(d.uuid, d.boot_index, d.delete_on_termination, d.volume_size)
            for d in devices] == [("s1", 0, True, 2), ("s2", None, False, None)]
    own_root = BootDevice("volume", "v", None, 0, False)
    replaces_vdb = BootDevice("volume", "w", None, None, False, device_name="vdb")
    assert [d.uuid for d in merge_devices(devices, [own_root])] == ["s2", "v"]
    assert [d.uuid for d in merge_devices(devices, [replaces_vdb])] == ["s1", "w"]
    assert image_block_devices({"id": "plain", "properties": {}}) == []
    with pytest.raises(BadRequest, match="source_type"):
        image_block_devices({"id": "x", "properties": {"block_device_mapping": json.dumps(
            [{"source_type": "floppy", "destination_type": "volume"}])}})


def test_volume_api_down_fails_the_action_and_leaves_nothing(api: ComputeApi) -> None:
    sid = volume_backed(api)
    before = set(api.fake.images)
    vols(api).down = True
    resp = create_image(api, sid)
    assert resp.status_code == 503 and "volume service" in resp.text
    assert set(api.fake.images) == before and vols(api).snapshots == {}
    assert api.server(sid)["OS-EXT-STS:task_state"] is None
    event = last_event(api, sid)
    assert event["result"] == "Error"
    vols(api).down = False
    # the second volume refused (over quota): the first snapshot is force-deleted
    vols(api).fail_snapshot_of[VOL2] = ServiceError("SnapshotLimitExceeded", status=413)
    resp = create_image(api, sid)
    assert resp.status_code == 403 and "SnapshotLimitExceeded" in resp.text
    assert vols(api).snapshots == {} and set(api.fake.images) == before
    assert [c[0] for c in vols(api).calls[-2:]] == ["create_snapshot",
                                                    "force_delete_snapshot"]
    assert last_event(api, sid)["result"] == "Error"


def test_image_api_failure_deletes_the_image_and_the_snapshots(
        api: ComputeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = volume_backed(api)
    before = set(api.fake.images)

    def refuse(token: str, image_id: str, data: bytes) -> None:
        raise ServiceError("image store unreachable", temporary=True)

    monkeypatch.setattr(api.fake, "upload_image", refuse)
    resp = create_image(api, sid)
    assert resp.status_code == 503 and "image service" in resp.text
    assert set(api.fake.images) == before and vols(api).snapshots == {}
    assert api.server(sid)["OS-EXT-STS:task_state"] is None
    assert last_event(api, sid)["result"] == "Error"
    # the server can be snapshotted once the image API is back
    monkeypatch.undo()
    assert create_image(api, sid).status_code == 202


def test_recovery_deletes_a_half_made_volume_backed_image(api: ComputeApi) -> None:
    """A crash between the image's creation and the step's end: the recovery deletes the
    queued image (never hands it to the agent) and ends the step."""
    from stratus.compute import models as m
    from stratus.compute.recovery import SNAPSHOT_STEP

    sid = volume_backed(api)
    half = api.fake.create_image(ALICE, {"name": "half", "instance_uuid": sid,
                                         "block_device_mapping": "[]"})

    def step(s: Any) -> None:
        srv = s.get(m.Server, sid)
        srv.task_state = SNAPSHOT_STEP

    api.core.transaction(step)
    assert api.core.servers.resume_snapshot(sid) is False
    assert half["id"] not in api.fake.images
    assert api.server(sid)["OS-EXT-STS:task_state"] is None
    assert assigned(api, sid)["snapshots"] == []


def test_against_the_real_image_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image the compute API registers is accepted by the real image API (strings
    for every custom property), active with no data, and boots a volume-backed server;
    deleting it there leaves the volume snapshots."""
    from starlette.testclient import TestClient

    from compute_api import fake_validate, make_core
    from image_api import make_service
    from stratus.common.clients import ApiClient
    from stratus.compute.app import build_app
    from stratus.compute.downstream import HttpDownstream
    from stratus.image.app import build_app as build_image_app

    monkeypatch.setattr(boot_volumes, "POLL", 0.0)
    glance_url = "http://image.test:9292"
    image_service = make_service(tmp_path)
    with TestClient(build_image_app(image_service, fake_validate),
                    raise_server_exceptions=False) as glance:
        fake_volumes = SnapshotVolumes()
        fake_volumes.volume(VOL, size=2)
        fake_volumes.volume(VOL2, size=3)
        ds = HttpDownstream(glance_url, "http://network.test:9696", None,
                            volumes=fake_volumes)
        ds._caller_img = ApiClient(glance_url, None, service="image", http=glance)
        core = make_core(f"sqlite:///{tmp_path}/compute.sqlite", None,
                         ds)
        app = build_app(core, fake_validate, public_url="http://compute.test:8774")
        with TestClient(app, raise_server_exceptions=False) as client:
            api = ComputeApi(client, core, None)
            api.fake = ds
            api.flavor(id="1")
            api.host("cmp1", host_ip="192.0.2.10")
            sid = volume_backed(api)
            resp = create_image(api, sid)
            assert resp.status_code == 202, resp.text
            image_id = resp.json()["image_id"]
            shown = glance.get(f"/v2/images/{image_id}",
                               headers={"X-Auth-Token": ALICE}).json()
            assert (shown["status"], shown["size"], shown["bdm_v2"]) == ("active", 0, "True")
            assert shown["owner"] == "p-alice" and shown["visibility"] == "private"
            bdm = json.loads(shown["block_device_mapping"])
            assert sorted(b["snapshot_id"] for b in bdm) == sorted(fake_volumes.snapshots)
            new = api.boot(imageRef=image_id)["server"]["id"]
            assert len(api.server(new)["os-extended-volumes:volumes_attached"]) == 2
            gone = glance.delete(f"/v2/images/{image_id}", headers={"X-Auth-Token": ALICE})
            assert gone.status_code == 204 and len(fake_volumes.snapshots) == 2
        core.db.dispose()
    image_service.db.dispose()


def test_with_the_real_volume_and_image_apis(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Tempest's test_image_volume_server_snapshot_dependency and the volume boot
    pattern's image-defined mapping, on the three real APIs in-process (a thread plays a
    perfect storage agent): a server booted from an image volume is snapshotted; the
    image is active with the snapshot's mapping; the snapshot becomes available; a server
    booted from the image gets a volume made from it, with the origin's image metadata;
    deleting the image keeps the snapshot, which the owner then deletes."""
    import threading

    from starlette.testclient import TestClient

    import volume_api
    from compute_api import fake_validate, make_core
    from image_api import make_service
    from stratus.common.clients import ApiClient, StaticToken
    from stratus.compute.app import build_app
    from stratus.compute.downstream import HttpDownstream, HttpVolumes
    from stratus.image.app import build_app as build_image_app

    monkeypatch.setattr(boot_volumes, "POLL", 0.02)
    glance_url, cinder_url = "http://image.test:9292", "http://volume.test:8776"
    image_service = make_service(tmp_path)
    (tmp_path / "vol").mkdir()
    with volume_api.in_process(tmp_path / "vol") as cinder, \
            TestClient(build_image_app(image_service, fake_validate),
                       raise_server_exceptions=False) as glance:
        cinder.register()
        origin = cinder.volume(ALICE, imageRef=volume_api.IMAGE, name="s8b-origin")
        cinder.converge()
        stop = threading.Event()
        agent = volume_api.VolumeApi(TestClient(cinder.client.app), cinder.core)

        def storage_agent() -> None:
            while not stop.wait(0.02):
                agent.converge()

        thread = threading.Thread(target=storage_agent, daemon=True)
        thread.start()
        try:
            volumes = HttpVolumes("http://identity.test:5000", cinder_url,
                                  StaticToken(ADMIN))
            volumes._client = ApiClient(cinder_url, StaticToken(ADMIN), service="volume",
                                        http=cinder.client)
            ds = HttpDownstream(glance_url, "http://network.test:9696", None, volumes)
            ds._caller_img = ApiClient(glance_url, None, service="image", http=glance)
            core = make_core(f"sqlite:///{tmp_path}/compute.sqlite", None,
                             ds)
            app = build_app(core, fake_validate, public_url="http://compute.test:8774")
            with TestClient(app, raise_server_exceptions=False) as client:
                api = ComputeApi(client, core, None)
                api.flavor(id="1")
                api.host("cmp1", host_ip="192.0.2.10")
                sid = api.boot(imageRef="", block_device_mapping_v2=[
                    {"uuid": origin["id"], "source_type": "volume",
                     "destination_type": "volume", "boot_index": 0,
                     "delete_on_termination": True}])["server"]["id"]
                plugged = [b["attachment_id"] for b in assigned(api, sid)["block_devices"]]
                api.report("cmp1", sid, vm_state="active", power_state=1, volumes=plugged)
                assert cinder.show(origin["id"])["status"] == "in-use"

                resp = create_image(api, sid)
                assert resp.status_code == 202, resp.text
                image_id = resp.json()["image_id"]
                image = glance.get(f"/v2/images/{image_id}",
                                   headers={"X-Auth-Token": ALICE}).json()
                assert image["status"] == "active" and image["size"] == 0
                [mapping] = json.loads(image["block_device_mapping"])
                snap_id = mapping["snapshot_id"]
                snap = cinder.ok("GET", f"/snapshots/{snap_id}")["snapshot"]
                assert snap["volume_id"] == origin["id"]
                assert snap["status"] in ("creating", "available")

                new = api.boot(imageRef=image_id)["server"]["id"]
                [attached] = api.server(new)["os-extended-volumes:volumes_attached"]
                made = cinder.show(attached["id"])
                assert made["snapshot_id"] == snap_id
                assert made["volume_image_metadata"]["image_id"] == volume_api.IMAGE

                gone = glance.delete(f"/v2/images/{image_id}",
                                     headers={"X-Auth-Token": ALICE})
                assert gone.status_code == 204
                assert cinder.ok("GET", f"/snapshots/{snap_id}")["snapshot"]["status"] \
                    == "available"
                cinder.ok("DELETE", f"/snapshots/{snap_id}")  # the owner deletes it
            core.db.dispose()
        finally:
            stop.set()
            thread.join(5)
    image_service.db.dispose()
