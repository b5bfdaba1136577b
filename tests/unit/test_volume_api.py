"""The volume API in-process (fake tokens, fake image API; the tests play the storage agent
by reading the host state and posting reports): statuses, guards, validation, quotas."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.volume.core import Settings
from volume_api import ADMIN, ALICE, BOB, IMAGE, READER, VolumeApi, in_process

pytestmark = pytest.mark.unit
SERVER = "11111111-2222-4333-8444-555555555555"
CONNECTOR = {"initiator": "iqn.2010-10.org.stratus:cmp1", "host": "cmp1", "ip": "192.0.2.20",
             "platform": "x86_64", "os_type": "linux", "multipath": False}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[VolumeApi]:
    with in_process(tmp_path, Settings(export_timeout=1.0, quotas={
            "volumes": 5, "gigabytes": 20, "snapshots": 3})) as client:
        client.register()
        yield client


def available(api: VolumeApi, **attrs: object) -> dict:
    vol = api.volume(**attrs)
    api.converge()
    shown = api.show(vol["id"])
    assert shown["status"] == "available", shown
    return shown


def test_version_discovery_and_microversions(api: VolumeApi) -> None:
    root = api.client.get("/")
    assert root.status_code == 300
    v3 = root.json()["versions"][0]
    assert (v3["id"], v3["min_version"], v3["version"]) == ("v3.0", "3.0", "3.60")
    assert v3["media-types"][0]["type"].startswith("application/vnd.openstack.volume+json")
    assert api.client.get("/v3/").status_code == 200
    ok = api.call("GET", "/volumes", version="3.27")
    assert ok.headers["OpenStack-API-Version"] == "volume 3.27"
    assert "OpenStack-API-Version" in ok.headers["Vary"]
    assert api.call("GET", "/volumes", version="3.61").status_code == 406
    assert api.call("GET", "/volumes", version="2.0").status_code == 406
    bad = api.call("GET", "/volumes", version="three")
    assert bad.status_code == 400 and "invalid format" in bad.text
    latest = api.call("GET", "/volumes", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "volume 3.60"
    # The attachments API exists from 3.27 on.
    assert api.call("GET", "/attachments", version="3.26").status_code == 404


def test_create_to_available_shows_every_field(api: VolumeApi) -> None:
    vol = api.volume(size=2, name="data", description="d", metadata={"k": "v"})
    assert vol["status"] == "creating" and vol["bootable"] == "false"
    st = api.state()
    assert [(v["id"], v["size_gb"], v["source"]) for v in st["volumes"]] == [
        (vol["id"], 2, {"kind": "blank", "id": None})]
    api.converge()
    shown = api.show(vol["id"])
    for key in ("attachments", "bootable", "encrypted", "multiattach", "volume_type",
                "availability_zone", "snapshot_id", "source_volid", "metadata", "user_id",
                "os-vol-tenant-attr:tenant_id", "links", "created_at", "updated_at"):
        assert key in shown, key
    assert shown["status"] == "available" and shown["volume_type"] == "__DEFAULT__"
    assert "os-vol-host-attr:host" not in shown
    admin_view = api.show(vol["id"], ADMIN)
    assert admin_view["os-vol-host-attr:host"] == "stor1@stratus#stratus"


def test_agent_error_and_no_host_end_in_error(api: VolumeApi, tmp_path: Path) -> None:
    vol = api.volume()
    api.report(volumes=[{"id": vol["id"], "size_gb": 0, "state": "error", "fault": "no space"}])
    shown = api.show(vol["id"])
    assert shown["status"] == "error"
    # A failed volume leaves the desired state (the agent removes what it made).
    assert api.state()["volumes"] == []
    (tmp_path / "empty").mkdir()
    with in_process(tmp_path / "empty") as bare:
        lonely = bare.volume()
        assert lonely["status"] == "error"
        assert bare.call("DELETE", f"/volumes/{lonely['id']}").status_code == 202
        assert bare.call("GET", f"/volumes/{lonely['id']}").status_code == 404


@pytest.mark.parametrize("size", [0, -1, "abc", 1.5, True, "", [1]])
def test_bad_sizes_are_refused_and_nothing_is_made(api: VolumeApi, size: object) -> None:
    resp = api.call("POST", "/volumes", json={"volume": {"size": size}})
    assert resp.status_code == 400, resp.text
    assert "size" in resp.json()["badRequest"]["message"]
    assert api.ok("GET", "/volumes")["volumes"] == []


def test_size_as_digits_and_quota(api: VolumeApi) -> None:
    assert api.volume(size="2")["size"] == 2
    over = api.call("POST", "/volumes", json={"volume": {"size": 19}})
    assert over.status_code == 413
    assert "gigabytes" in over.json()["overLimit"]["message"]
    for _ in range(4):
        api.volume(size=1)
    assert api.call("POST", "/volumes", json={"volume": {"size": 1}}).status_code == 413
    assert len(api.ok("GET", "/volumes")["volumes"]) == 5
    limits = api.ok("GET", "/limits")["limits"]["absolute"]
    assert limits["totalVolumesUsed"] == 5 and limits["maxTotalVolumes"] == 5
    assert limits["totalGigabytesUsed"] == 6
    quota = api.ok("GET", "/os-quota-sets/p-alice?usage=true")["quota_set"]
    assert quota["volumes"] == {"limit": 5, "in_use": 5, "reserved": 0, "allocated": 0}


def test_projects_are_isolated(api: VolumeApi) -> None:
    vol = api.volume()
    assert api.call("GET", f"/volumes/{vol['id']}", BOB).status_code == 404
    assert api.call("DELETE", f"/volumes/{vol['id']}", BOB).status_code == 404
    assert api.action(vol["id"], {"os-extend": {"new_size": 2}}, BOB).status_code == 404
    # The URL's project must be the token's.
    assert api.call("GET", "/v3/p-alice/volumes", BOB).status_code == 400
    assert api.call("GET", f"/v3/p-bob/volumes/{vol['id']}", ADMIN).status_code == 200
    assert api.call("POST", "/volumes", READER, json={"volume": {"size": 1}}).status_code == 403
    assert api.call("GET", "/v3/p-alice/volumes", "nope").status_code == 401


def test_extend_guards(api: VolumeApi) -> None:
    vol = available(api, size=2)
    shrink = api.action(vol["id"], {"os-extend": {"new_size": 1}})
    assert shrink.status_code == 400 and "greater than current size" in shrink.text
    assert api.action(vol["id"], {"os-extend": {"new_size": 2}}).status_code == 400
    assert api.action(vol["id"], {"os-extend": {"new_size": 99}}).status_code == 413
    assert api.action(vol["id"], {"os-extend": {"new_size": 3}}).status_code == 202
    assert api.show(vol["id"])["status"] == "extending"
    assert api.state()["volumes"][0]["size_gb"] == 3
    api.report(volumes=[{"id": vol["id"], "size_gb": 2}])
    assert api.show(vol["id"])["status"] == "extending"
    api.report(volumes=[{"id": vol["id"], "size_gb": 3}])
    assert api.show(vol["id"])["status"] == "available"
    assert api.show(vol["id"])["size"] == 3


def attach(api: VolumeApi, volume_id: str, token: str = ALICE) -> str:
    resp = api.call("POST", "/attachments", token, json={"attachment": {
        "volume_uuid": volume_id, "instance_uuid": SERVER, "mode": "rw"}})
    assert resp.status_code == 200, resp.text
    att = resp.json()["attachment"]
    timer = threading.Timer(0.3, api.converge)
    timer.start()
    upd = api.call("PUT", f"/attachments/{att['id']}", token,
                   json={"attachment": {"connector": CONNECTOR}})
    timer.join()
    assert upd.status_code == 200, upd.text
    info = upd.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "iscsi"
    assert info["data"]["target_portal"] == "192.0.2.10:3260"
    assert info["data"]["auth_method"] == "CHAP" and info["data"]["target_lun"] == 1
    assert api.call("POST", f"/attachments/{att['id']}/action", token,
                    json={"os-complete": None}).status_code == 204
    return str(att["id"])


def test_attach_flow_and_guards(api: VolumeApi) -> None:
    vol = available(api)
    att = attach(api, vol["id"])
    shown = api.show(vol["id"])
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["server_id"] == SERVER
    export = api.state()["exports"][0]
    assert export["attachment_id"] == att and export["initiator"] == CONNECTOR["initiator"]
    # An in-use volume cannot be attached again, deleted, or snapshotted without force.
    again = api.call("POST", "/attachments", json={"attachment": {"volume_uuid": vol["id"]}})
    assert again.status_code == 400 and "in-use" in again.text
    assert api.call("DELETE", f"/volumes/{vol['id']}").status_code == 400
    snap = api.call("POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"]}})
    assert snap.status_code == 400 and "force" in snap.text
    assert api.ok("GET", "/snapshots")["snapshots"] == []
    # Extending an in-use volume needs 3.42.
    assert api.action(vol["id"], {"os-extend": {"new_size": 2}}, version="3.41"
                      ).status_code == 400
    assert api.show(vol["id"])["status"] == "in-use"
    assert api.ok("DELETE", f"/attachments/{att}", status=200) == {"attachments": []}
    assert api.show(vol["id"])["status"] == "available"
    assert api.state()["exports"] == []


def test_export_timeout_and_failure_answer_409_and_leave_reserved(api: VolumeApi) -> None:
    vol = available(api)
    att = api.ok("POST", "/attachments", status=200, json={"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": SERVER}})["attachment"]
    slow = api.call("PUT", f"/attachments/{att['id']}",
                    json={"attachment": {"connector": CONNECTOR}})
    assert slow.status_code == 409 and "did not export" in slow.text
    assert api.show(vol["id"])["status"] == "reserved"
    timer = threading.Timer(0.3, lambda: api.report(
        volumes=[vol["id"]], exports=[{"attachment_id": att["id"], "state": "error",
                                       "fault": "tgtadm failed"}]))
    timer.start()
    failed = api.call("PUT", f"/attachments/{att['id']}",
                      json={"attachment": {"connector": CONNECTOR}})
    timer.join()
    assert failed.status_code == 409 and "tgtadm failed" in failed.text
    assert api.show(vol["id"])["status"] == "reserved"
    assert api.state()["exports"] == []


def test_legacy_attach_actions(api: VolumeApi) -> None:
    vol = available(api)
    assert api.action(vol["id"], {"os-reserve": None}).status_code == 202
    assert api.show(vol["id"])["status"] == "attaching"
    assert api.action(vol["id"], {"os-reserve": None}).status_code == 400
    assert api.action(vol["id"], {"os-unreserve": None}).status_code == 202
    assert api.show(vol["id"])["status"] == "available"
    api.action(vol["id"], {"os-reserve": None})
    timer = threading.Timer(0.3, api.converge)
    timer.start()
    init = api.action(vol["id"], {"os-initialize_connection": {"connector": CONNECTOR}})
    timer.join()
    assert init.status_code == 200, init.text
    assert init.json()["connection_info"]["data"]["target_iqn"].startswith("iqn.")
    assert api.action(vol["id"], {"os-attach": {"instance_uuid": SERVER,
                                                "mountpoint": "/dev/vdb"}}).status_code == 202
    shown = api.show(vol["id"])
    assert shown["status"] == "in-use" and shown["attachments"][0]["device"] == "/dev/vdb"
    assert api.action(vol["id"], {"os-begin_detaching": None}).status_code == 202
    assert api.show(vol["id"])["status"] == "detaching"
    assert api.action(vol["id"], {"os-roll_detaching": None}).status_code == 202
    assert api.show(vol["id"])["status"] == "in-use"
    api.action(vol["id"], {"os-begin_detaching": None})
    assert api.action(vol["id"], {"os-terminate_connection": {"connector": CONNECTOR}}
                      ).status_code == 202
    assert api.state()["exports"] == []
    assert api.action(vol["id"], {"os-detach": {}}).status_code == 202
    assert api.show(vol["id"])["status"] == "available"


def test_snapshots_and_volumes_from_them(api: VolumeApi) -> None:
    vol = available(api, size=2)
    snap = api.ok("POST", "/snapshots", json={"snapshot": {"volume_id": vol["id"],
                                                           "name": "s1"}})["snapshot"]
    assert snap["status"] == "creating" and snap["size"] == 2
    assert api.state()["snapshots"] == [{"id": snap["id"], "volume_id": vol["id"]}]
    api.converge()
    assert api.ok("GET", f"/snapshots/{snap['id']}")["snapshot"]["status"] == "available"
    small = api.call("POST", "/volumes", json={"volume": {"size": 1,
                                                          "snapshot_id": snap["id"]}})
    assert small.status_code == 400
    clone = api.volume(size=None, snapshot_id=snap["id"])
    assert clone["size"] == 2 and clone["snapshot_id"] == snap["id"]
    assert api.state()["volumes"][-1]["source"] == {"kind": "snapshot", "id": snap["id"]}
    # A volume with snapshots cannot be deleted.
    busy = api.call("DELETE", f"/volumes/{vol['id']}")
    assert busy.status_code == 400 and "snapshot" in busy.text
    api.converge()
    assert api.call("DELETE", f"/snapshots/{snap['id']}").status_code == 202
    assert api.state()["snapshots"] == []
    api.converge()
    assert api.call("GET", f"/snapshots/{snap['id']}").status_code == 404
    assert api.call("DELETE", f"/volumes/{vol['id']}").status_code == 202
    assert api.show(vol["id"])["status"] == "deleting"
    api.converge()
    assert api.call("GET", f"/volumes/{vol['id']}").status_code == 404


def test_from_image_clone_and_upload(api: VolumeApi) -> None:
    vol = api.volume(size=None, imageRef=IMAGE)
    assert vol["size"] == 1 and vol["bootable"] == "true"
    # As Cinder: the image's metadata shows on reads, not in the create answer.
    assert "volume_image_metadata" not in vol
    assert api.show(vol["id"])["volume_image_metadata"]["image_id"] == IMAGE
    missing = api.call("POST", "/volumes", json={"volume": {"size": 1,
                                                            "imageRef": "nope"}})
    assert missing.status_code == 400
    assert api.core is not None and api.core.images is not None
    api.core.images.images[IMAGE]["virtual_size"] = 3 * 1024**3  # type: ignore[attr-defined]
    small = api.call("POST", "/volumes", json={"volume": {"size": 2, "imageRef": IMAGE}})
    assert small.status_code == 400 and "3G is larger" in small.text
    api.core.images.images[IMAGE].pop("virtual_size")  # type: ignore[attr-defined]
    api.converge()
    clone = api.volume(size=None, source_volid=vol["id"])
    assert clone["source_volid"] == vol["id"] and clone["bootable"] == "true"
    up = api.action(vol["id"], {"os-volume_upload_image": {"image_name": "img",
                                                           "disk_format": "qcow2"}})
    assert up.status_code == 202, up.text
    image_id = up.json()["os-volume_upload_image"]["image_id"]
    assert api.show(vol["id"])["status"] == "uploading"
    assert api.state()["uploads"] == [{"volume_id": vol["id"], "image_id": image_id,
                                       "disk_format": "qcow2"}]
    api.converge()
    assert api.show(vol["id"])["status"] == "available"
    assert api.state()["uploads"] == []


def test_actions_bootable_readonly_reset_and_metadata(api: VolumeApi) -> None:
    vol = available(api)
    assert api.action(vol["id"], {"os-set_bootable": {"bootable": True}}).status_code == 200
    assert api.show(vol["id"])["bootable"] == "true"
    assert api.action(vol["id"], {"os-set_bootable": {"bootable": "maybe"}}).status_code == 400
    assert api.action(vol["id"], {"os-update_readonly_flag": {"readonly": True}}
                      ).status_code == 202
    assert api.action(vol["id"], {"os-reset_status": {"status": "error"}}).status_code == 403
    assert api.action(vol["id"], {"os-reset_status": {"status": "error"}}, ADMIN
                      ).status_code == 202
    assert api.show(vol["id"])["status"] == "error"
    assert api.action(vol["id"], {"os-reset_status": {"status": "bogus"}}, ADMIN
                      ).status_code == 400
    assert api.action(vol["id"], {"os-nothing": {}}).status_code == 400
    assert api.ok("POST", f"/volumes/{vol['id']}/metadata", status=200,
                  json={"metadata": {"a": "1"}}) == {"metadata": {"a": "1"}}
    assert api.ok("PUT", f"/volumes/{vol['id']}/metadata/b",
                  json={"meta": {"b": "2"}}) == {"meta": {"b": "2"}}
    assert api.ok("GET", f"/volumes/{vol['id']}/metadata")["metadata"] == {"a": "1", "b": "2"}
    assert api.call("DELETE", f"/volumes/{vol['id']}/metadata/a").status_code == 200
    assert api.call("GET", f"/volumes/{vol['id']}/metadata/a").status_code == 404
    upd = api.ok("PUT", f"/volumes/{vol['id']}", json={"volume": {"name": "n2"}})
    assert upd["volume"]["name"] == "n2"
    assert api.call("PUT", f"/volumes/{vol['id']}",
                    json={"volume": {"size": 5}}).status_code == 400


def test_listing_filters_and_paging(api: VolumeApi) -> None:
    made = [api.volume(name=f"v{i}", metadata={"n": str(i % 2)}) for i in range(4)]
    page = api.ok("GET", "/volumes?limit=2")
    assert len(page["volumes"]) == 2 and page["volumes_links"][0]["rel"] == "next"
    rest = api.ok("GET", f"/volumes?limit=2&marker={page['volumes'][1]['id']}")
    assert {v["id"] for v in page["volumes"] + rest["volumes"]} == {v["id"] for v in made}
    assert api.ok("GET", "/volumes/detail?name=v2")["volumes"][0]["id"] == made[2]["id"]
    odd = api.ok("GET", '/volumes/detail?metadata={"n": "1"}')["volumes"]
    assert {v["name"] for v in odd} == {"v1", "v3"}
    assert len(api.ok("GET", "/volumes?name~=V")["volumes"]) == 4
    born = made[2]["created_at"]
    later = api.ok("GET", f"/volumes/detail?created_at=gte:{born}")["volumes"]
    assert {v["name"] for v in later} == {"v2", "v3"}
    earlier = api.ok("GET", f"/volumes/detail?created_at=lt:{born}")["volumes"]
    assert {v["name"] for v in earlier} == {"v0", "v1"}
    assert api.call("GET", "/volumes?created_at=soon").status_code == 400
    counted = api.ok("GET", "/volumes?with_count=true&limit=1")
    assert counted["count"] == 4
    ordered = api.ok("GET", "/volumes/detail?sort=name:asc")["volumes"]
    assert [v["name"] for v in ordered] == ["v0", "v1", "v2", "v3"]
    assert api.call("GET", "/volumes?sort=bogus:asc").status_code == 400
    assert api.call("GET", "/volumes?marker=nope").status_code == 400
    assert api.ok("GET", "/volumes", BOB)["volumes"] == []
    summary = api.ok("GET", "/volumes/summary")["volume-summary"]
    assert summary == {"total_size": 4, "total_count": 4, "metadata": {"n": ["0", "1"]}}
    assert api.call("GET", "/volumes/summary", version="3.11").status_code == 404
    assert len(api.ok("GET", "/volumes/detail?all_tenants=1", ADMIN)["volumes"]) == 4


def test_settings_are_checked(tmp_path: Path) -> None:
    from stratus.common.config import Config

    conf = tmp_path / "stratus.conf"
    conf.write_text("[volume]\nvolume_format = qcow2\nquota_volumes = 3\n")
    settings = Settings.from_config(Config.load(str(conf)))
    assert settings.volume_format == "qcow2" and settings.quotas["volumes"] == 3
    conf.write_text("[volume]\nvolume_format = vmdk\n")
    with pytest.raises(ValueError, match="volume_format"):
        Settings.from_config(Config.load(str(conf)))


def test_types_zones_services(api: VolumeApi) -> None:
    types = api.ok("GET", "/types")["volume_types"]
    assert [t["name"] for t in types] == ["__DEFAULT__"]
    assert api.ok("GET", "/types/default")["volume_type"]["name"] == "__DEFAULT__"
    made = api.ok("POST", "/types", ADMIN, status=200, json={"volume_type": {
        "name": "fast", "extra_specs": {"volume_backend_name": "stor1"}}})["volume_type"]
    assert api.call("POST", "/types", ALICE, json={"volume_type": {"name": "x"}}
                    ).status_code == 403
    vol = api.volume(volume_type="fast")
    assert vol["volume_type"] == "fast" and vol["status"] == "creating"
    assert api.call("POST", "/volumes", json={"volume": {"size": 1, "volume_type": "nope"}}
                    ).status_code == 404
    assert api.call("DELETE", f"/types/{made['id']}", ADMIN).status_code == 400
    zones = api.ok("GET", "/os-availability-zone")["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
    assert api.call("GET", "/os-services").status_code == 403
    binaries = {s["binary"] for s in api.ok("GET", "/os-services", ADMIN)["services"]}
    assert binaries == {"cinder-scheduler", "cinder-volume"}
    aliases = {e["alias"] for e in api.ok("GET", "/extensions")["extensions"]}
    assert "os-volume-actions" in aliases


def test_sweep_rederives_statuses(api: VolumeApi) -> None:
    assert api.core is not None
    vol = available(api)
    api.action(vol["id"], {"os-reserve": None})
    att = api.ok("POST", "/attachments", status=400, json={"attachment": {
        "volume_uuid": vol["id"]}})
    assert "attach" in str(att)
    other = available(api)
    a2 = attach(api, other["id"])
    api.action(other["id"], {"os-begin_detaching": None})
    # A new process's first sweep: a detaching left by a dead caller is in-use again.
    api.core.storage.swept = 0
    api.core.sweep()
    assert api.show(other["id"])["status"] == "in-use"
    # Attachments never completed for longer than stale_attachment_seconds are removed.
    api.core.settings.stale_attachment_seconds = 1
    from datetime import timedelta

    from stratus.volume import models as m
    with api.core.db.session() as s:
        for row in s.query(m.Attachment).all():
            row.updated_at = row.updated_at - timedelta(seconds=5)
    api.core.sweep()
    assert api.show(vol["id"])["status"] == "available"
    assert api.show(other["id"])["status"] == "in-use"
    assert api.ok("GET", f"/attachments/{a2}")["attachment"]["status"] == "attached"


def test_a_kept_report_does_not_judge_a_newer_export(api: VolumeApi) -> None:
    assert api.core is not None
    vol = available(api)
    att = api.ok("POST", "/attachments", status=200, json={"attachment": {
        "volume_uuid": vol["id"]}})["attachment"]
    api.core.settings.export_timeout = 0.2
    api.call("PUT", f"/attachments/{att['id']}", json={"attachment": {"connector": CONNECTOR}})
    # The agent failed the first export; the caller retries (a fresh target).
    api.report(volumes=[vol["id"]], exports=[{"attachment_id": att["id"], "state": "error",
                                              "fault": "old"}])
    failed = api.call("PUT", f"/attachments/{att['id']}",
                      json={"attachment": {"connector": CONNECTOR}})
    assert failed.status_code == 409 and "old" in failed.text
    assert api.state()["exports"] == []
    time.sleep(0.01)
    assert api.call("PUT", f"/attachments/{att['id']}",
                    json={"attachment": {"connector": CONNECTOR}}).status_code == 409
    api.core.sweep()  # the kept report (older than the retry) leaves the new export pending
    assert api.core.attachments.export_state(att["id"]) == (None, None)
    assert api.state()["exports"][0]["attachment_id"] == att["id"]


WRITE_KEYS = {"attachments", "links", "availability_zone", "encrypted", "updated_at",
              "replication_status", "snapshot_id", "id", "size", "user_id", "metadata",
              "status", "description", "multiattach", "source_volid", "consistencygroup_id",
              "name", "bootable", "created_at", "volume_type", "group_id", "provider_id",
              "service_uuid", "shared_targets", "migration_status"}
SHOW_KEYS = WRITE_KEYS | {"os-vol-host-attr:host", "os-vol-tenant-attr:tenant_id",
                          "os-vol-mig-status-attr:migstat", "os-vol-mig-status-attr:name_id",
                          "volume_image_metadata"}
SNAPSHOT_KEYS = {"status", "description", "created_at", "name", "volume_id", "metadata", "id",
                 "size", "updated_at"}


def test_answers_carry_only_the_attributes_cinder_answers(api: VolumeApi) -> None:
    """Clients that check answers strictly (Tempest's schemas) accept these, at 3.0."""
    for token in (ALICE, ADMIN):
        made = api.ok("POST", "/volumes", token, version="3.0", json={"volume": {
            "size": 1, "imageRef": IMAGE}})["volume"]
        assert set(made) <= WRITE_KEYS, set(made) - WRITE_KEYS
        api.converge()
        shown = api.ok("GET", f"/volumes/{made['id']}", token, version="3.0")["volume"]
        assert set(shown) <= SHOW_KEYS, set(shown) - SHOW_KEYS
        upd = api.ok("PUT", f"/volumes/{made['id']}", token, version="3.0",
                     json={"volume": {"name": "x"}})["volume"]
        assert set(upd) <= WRITE_KEYS, set(upd) - WRITE_KEYS
        snap = api.ok("POST", "/snapshots", token, version="3.0", json={"snapshot": {
            "volume_id": made["id"]}})["snapshot"]
        assert set(snap) == SNAPSHOT_KEYS
        listed = api.ok("GET", "/snapshots", token, version="3.0")["snapshots"]
        assert all(set(s) == SNAPSHOT_KEYS for s in listed)
        detail = api.ok("GET", f"/snapshots/{snap['id']}", token, version="3.0")["snapshot"]
        assert set(detail) == SNAPSHOT_KEYS | {"os-extended-snapshot-attributes:progress",
                                               "os-extended-snapshot-attributes:project_id"}
    vt = api.ok("POST", "/types", ADMIN, status=200, json={"volume_type": {"name": "t1"}})
    assert set(vt["volume_type"]) == {"extra_specs", "name", "is_public", "description", "id",
                                      "os-volume-type-access:is_public"}
    vt2 = api.ok("PUT", f"/types/{vt['volume_type']['id']}", ADMIN,
                 json={"volume_type": {"description": "d"}})
    assert set(vt2["volume_type"]) == {"extra_specs", "name", "is_public", "description", "id"}


def test_admin_force_delete_and_cascade(api: VolumeApi) -> None:
    vol = available(api)
    attach(api, vol["id"])
    # A member cannot force; before 3.23 force is not read; an admin forces at 3.23+.
    assert api.call("DELETE", f"/volumes/{vol['id']}?force=true").status_code == 403
    assert api.call("DELETE", f"/volumes/{vol['id']}?force=true", ADMIN,
                    version="3.22").status_code == 400
    assert api.call("DELETE", f"/volumes/{vol['id']}?force=true", ADMIN).status_code == 202
    assert api.show(vol["id"], ADMIN)["status"] == "deleting"
    assert api.state()["exports"] == []
    api.converge()
    assert api.call("GET", f"/volumes/{vol['id']}").status_code == 404
    # cascade deletes the snapshots with the volume; os-force_delete is admin-only.
    other = available(api)
    api.ok("POST", "/snapshots", json={"snapshot": {"volume_id": other["id"]}})
    api.converge()
    assert api.action(other["id"], {"os-force_delete": None}).status_code == 403
    assert api.call("DELETE", f"/volumes/{other['id']}?cascade=true").status_code == 202
    assert api.state()["snapshots"] == [] and api.state()["volumes"] == []
    api.converge()
    assert api.ok("GET", "/snapshots")["snapshots"] == []
    assert api.ok("GET", "/volumes")["volumes"] == []
