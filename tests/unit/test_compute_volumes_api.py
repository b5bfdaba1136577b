"""os-volume_attachments on the compute API in-process, with a fake volume API: the
attach/detach flow through the agent's reports, the assignment's block devices, the
server view, errors, and what a server delete releases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ADMIN, ALICE, BOB, ComputeApi, in_process
from stratus.common.clients import ServiceError

pytestmark = pytest.mark.unit
VOL = "22222222-2222-4222-8222-222222222222"
VOL2 = "33333333-3333-4333-8333-333333333333"
P = "/v2.1/servers/{}/os-volume_attachments"


class FakeVolumes:
    """The volume API's attachments in memory (Cinder's statuses, simplified)."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_export: ServiceError | None = None
        self.down = False
        self._ids = itertools.count(1)

    def volume(self, vid: str, project: str = "p-alice") -> None:
        self.volumes[vid] = {"id": vid, "status": "available", "project": project}

    def _check(self) -> None:
        if self.down:
            raise ServiceError("volume unreachable", temporary=True)

    def get_volume(self, project: str, volume_id: str) -> dict[str, Any]:
        self._check()
        vol = self.volumes.get(volume_id)
        if vol is None:
            raise ServiceError("not found", status=404)
        # as the volume API answers the admin service user: any project's volume
        return {**vol, "os-vol-tenant-attr:tenant_id": vol["project"]}

    def create_volume(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if body.get("imageRef") == "bad-image":
            raise ServiceError("Image bad-image could not be found.", status=400)
        vid = f"vol-{next(self._ids)}"
        self.volumes[vid] = {"id": vid, "status": "available", "project": project,
                             "source": body}
        self.calls.append(("create_volume", vid))
        return {"id": vid, "status": "creating"}

    def create_attachment(self, project: str, volume_id: str, server_id: str
                          ) -> dict[str, Any]:
        self._check()
        vol = self.get_volume(project, volume_id)
        if vol["status"] != "available":
            raise ServiceError(f"Volume status must be available, is {vol['status']}",
                               status=409)
        aid = f"att-{next(self._ids)}"
        self.attachments[aid] = {"id": aid, "volume_id": volume_id, "server": server_id,
                                 "status": "reserved"}
        self.volumes[volume_id]["status"] = "reserved"
        self.calls.append(("create", aid))
        return {"id": aid}

    def update_attachment(self, project: str, attachment_id: str,
                          connector: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update", attachment_id))
        if self.fail_export is not None:
            raise self.fail_export
        att = self.attachments[attachment_id]
        att["connector"], att["status"] = connector, "attaching"
        return {"id": attachment_id, "connection_info": {
            "driver_volume_type": "iscsi", "data": {
                "target_iqn": f"iqn.2010-10.org.stratus:{att['volume_id']}",
                "target_portal": "127.0.0.1:3260", "target_lun": 1,
                "auth_method": "CHAP", "auth_username": "u", "auth_password": "p",
                "volume_id": att["volume_id"]}}}

    def complete_attachment(self, project: str, attachment_id: str) -> None:
        self.calls.append(("complete", attachment_id))
        att = self.attachments[attachment_id]
        att["status"] = "attached"
        self.volumes[att["volume_id"]]["status"] = "in-use"

    def delete_attachment(self, project: str, attachment_id: str) -> None:
        self._check()
        self.calls.append(("delete", attachment_id))
        att = self.attachments.pop(attachment_id, None)
        if att is not None and att["volume_id"] in self.volumes:
            self.volumes[att["volume_id"]]["status"] = "available"

    def delete_volume(self, project: str, volume_id: str) -> None:
        self.calls.append(("delete_volume", volume_id))
        self.volumes.pop(volume_id, None)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1", host_ip="192.0.2.10")
        vols = FakeVolumes()
        vols.volume(VOL)
        vols.volume(VOL2)
        client.fake.volumes = vols
        yield client


def vols(api: ComputeApi) -> FakeVolumes:
    found: FakeVolumes = api.fake.volumes
    return found


def active(api: ComputeApi) -> str:
    sid: str = api.boot()["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def assigned(api: ComputeApi, sid: str) -> dict[str, Any]:
    servers = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    found: dict[str, Any] = next(s for s in servers if s["id"] == sid)
    return found


def msg(resp: Any) -> str:
    return str(next(iter(resp.json().values()))["message"])


def test_attach_plug_complete_detach_unplug(api: ComputeApi) -> None:
    sid = active(api)
    att = api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert att["volumeAttachment"] == {"device": "/dev/vdb", "serverId": sid,
                                       "volumeId": VOL, "id": VOL}
    # the agent is told to plug it, with the connection_info and the host's initiator
    bdms = assigned(api, sid)["block_devices"]
    assert [(b["volume_id"], b["device"], b["initiator"]) for b in bdms] == [
        (VOL, "vdb", "iqn.2010-10.org.stratus:cmp1")]
    assert bdms[0]["connection_info"]["data"]["target_portal"] == "127.0.0.1:3260"
    att_id = bdms[0]["attachment_id"]
    assert vols(api).attachments[att_id]["connector"]["ip"] == "192.0.2.10"
    # shown at once (Nova shows the mapping while it attaches)
    shown = api.server(sid)["os-extended-volumes:volumes_attached"]
    assert shown == [{"id": VOL, "delete_on_termination": False}]
    # a report without it does not complete it; one with it does
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[])
    assert vols(api).attachments[att_id]["status"] == "attaching"
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[att_id])
    assert vols(api).attachments[att_id]["status"] == "attached"
    assert vols(api).volumes[VOL]["status"] == "in-use"
    listed = api.ok("GET", P.format(sid), ALICE)["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [VOL]
    assert api.ok("GET", P.format(sid) + f"/{VOL}", ALICE)["volumeAttachment"]["device"] \
        == "/dev/vdb"
    # detach: the agent is told to unplug; its report without it deletes the attachment
    api.ok("DELETE", P.format(sid) + f"/{VOL}", ALICE, status=202)
    assert "block_devices" not in assigned(api, sid)  # absent: none
    assert assigned(api, sid)["detaching"] == [att_id]  # the agent reports until it is gone
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[att_id])
    assert att_id in vols(api).attachments  # still plugged: nothing deleted yet
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[])
    assert att_id not in vols(api).attachments
    assert vols(api).volumes[VOL]["status"] == "available"
    assert api.ok("GET", P.format(sid), ALICE)["volumeAttachments"] == []
    assert api.call("GET", P.format(sid) + f"/{VOL}", ALICE).status_code == 404


def test_devices_and_microversion_shapes(api: ComputeApi) -> None:
    sid = active(api)
    api.ok("POST", P.format(sid), ALICE,
           json={"volumeAttachment": {"volumeId": VOL, "device": "/dev/vdd"}})
    second = api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL2}})
    assert second["volumeAttachment"]["device"] == "/dev/vdb"
    # tag needs 2.49; delete_on_termination 2.79 (this API stops at 2.47)
    for extra in ({"tag": "x"}, {"delete_on_termination": True}):
        resp = api.call("POST", P.format(sid), ALICE,
                        json={"volumeAttachment": {"volumeId": VOL, **extra}})
        assert resp.status_code == 400, resp.text


def test_volumes_skip_the_device_names_of_the_flavors_local_disks(api: ComputeApi) -> None:
    """The agent plugs a flavor's ephemeral disk as vdb and its swap as the next one
    (agent/compute/virt/localdisks.py): a volume attached later, or given at boot, gets the
    next free name, and asking for one of those names is refused."""
    api.flavor(name="m1.eph", swap=256, id="eph", **{"OS-FLV-EXT-DATA:ephemeral": 1})
    sid = api.boot(flavorRef="eph")["server"]["id"]
    api.report("cmp1", sid, vm_state="active", power_state=1)
    taken = api.call("POST", P.format(sid), ALICE,
                     json={"volumeAttachment": {"volumeId": VOL, "device": "/dev/vdc"}})
    assert taken.status_code == 400 and "in use" in msg(taken)
    first = api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert first["volumeAttachment"]["device"] == "/dev/vdd"
    api.flavor(name="m1.swap", swap=128, id="swp")
    body = {"server": {"name": "vm", "imageRef": "", "flavorRef": "swp", "networks": "none",
                       "block_device_mapping_v2": [
                           {"uuid": IMAGE_ID, "source_type": "image",
                            "destination_type": "volume", "boot_index": 0,
                            "volume_size": 1, "delete_on_termination": True},
                           {"uuid": VOL2, "source_type": "volume",
                            "destination_type": "volume", "boot_index": -1}]}}
    booted = api.ok("POST", "/v2.1/servers", ALICE, status=202, json=body)["server"]["id"]
    bdms = assigned(api, booted)["block_devices"]
    assert [(b["device"], b["boot_index"]) for b in bdms] == [("vda", 0), ("vdc", None)]


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"volumeAttachment": {}}, 400, "volumeId"),
    ({"volumeAttachment": {"volumeId": "44444444-4444-4444-8444-444444444444"}}, 404,
     "could not be found"),
    ({"volumeAttachment": {"volumeId": VOL, "device": "/dev/sdb"}}, 400, "device path"),
    ({"volumeAttachment": {"volumeId": VOL, "device": "/dev/vda"}}, 400, "in use"),
    ({"other": {}}, 400, "volumeAttachment"),
])
def test_attach_bad_input(api: ComputeApi, body: dict[str, Any], status: int,
                          text: str) -> None:
    sid = active(api)
    resp = api.call("POST", P.format(sid), ALICE, json=body)
    assert resp.status_code == status, resp.text
    assert text in msg(resp)
    assert api.ok("GET", P.format(sid), ALICE)["volumeAttachments"] == []
    assert vols(api).attachments == {}


def test_in_use_elsewhere_twice_other_project_and_states(api: ComputeApi) -> None:
    sid, other = active(api), active(api)
    api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    again = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert again.status_code == 400 and "already attached" in msg(again)
    elsewhere = api.call("POST", P.format(other), ALICE,
                         json={"volumeAttachment": {"volumeId": VOL}})
    assert elsewhere.status_code == 409 and "Invalid volume" in msg(elsewhere)
    assert api.ok("GET", P.format(other), ALICE)["volumeAttachments"] == []
    # another project's server is not found; another project's volume neither
    assert api.call("GET", P.format(sid), BOB).status_code == 404
    vols(api).volume("55555555-5555-4555-8555-555555555555", project="p-bob")
    resp = api.call("POST", P.format(other), ALICE, json={"volumeAttachment": {
        "volumeId": "55555555-5555-4555-8555-555555555555"}})
    assert resp.status_code == 404 and vols(api).attachments.keys() == {"att-1"}
    # a building server: 409
    building = api.boot()["server"]["id"]
    resp = api.call("POST", P.format(building), ALICE,
                    json={"volumeAttachment": {"volumeId": VOL2}})
    assert resp.status_code == 409 and "vm_state" in msg(resp)
    assert api.call("DELETE", P.format(other) + f"/{VOL2}", ALICE).status_code == 404


def test_an_admin_attaches_another_projects_volume(api: ComputeApi) -> None:
    """Nova looks the volume up with the caller's token: an admin sees (and attaches)
    any project's volume to any server; the server's owner still cannot."""
    sid = active(api)
    theirs = "66666666-6666-4666-8666-666666666666"
    vols(api).volume(theirs, project="p-admin")
    refused = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {
        "volumeId": theirs}})
    assert refused.status_code == 404 and theirs in msg(refused)
    att = api.ok("POST", P.format(sid), ADMIN, json={"volumeAttachment": {
        "volumeId": theirs}})["volumeAttachment"]
    assert (att["volumeId"], att["serverId"]) == (theirs, sid)
    assert [a["volumeId"] for a in api.ok("GET", P.format(sid), ALICE)[
        "volumeAttachments"]] == [theirs]


def test_export_failure_and_no_volume_service_leave_nothing(api: ComputeApi) -> None:
    sid = active(api)
    vols(api).fail_export = ServiceError("export timed out", status=409)
    resp = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert resp.status_code == 409 and "could not be exported" in msg(resp)
    assert vols(api).attachments == {} and vols(api).volumes[VOL]["status"] == "available"
    vols(api).fail_export = ServiceError("storage agent down", status=503, temporary=True)
    resp = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert resp.status_code == 503
    vols(api).fail_export = None
    vols(api).down = True
    resp = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert resp.status_code == 503 and "cannot be reached" in msg(resp)
    api.fake.volumes = None
    resp = api.call("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    assert resp.status_code == 503 and "not configured" in msg(resp)
    assert api.ok("GET", P.format(sid), ALICE)["volumeAttachments"] == []


def test_server_delete_releases_attachments_and_delete_on_termination(api: ComputeApi
                                                                      ) -> None:
    sid = active(api)
    api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL2}})
    # as boot from volume will: the second one goes with the server
    with api.core.db.session() as s:
        from stratus.compute import models as m
        row = s.query(m.BlockDeviceMapping).filter_by(volume_id=VOL2).one()
        row.delete_on_termination = True
        s.commit()
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
    api.report("cmp1", sid, deleted=True)
    assert vols(api).attachments == {}
    assert VOL in vols(api).volumes and VOL2 not in vols(api).volumes
    assert ("delete_volume", VOL2) in vols(api).calls


def test_an_attach_cut_short_is_undone_by_a_later_report(api: ComputeApi) -> None:
    """The API process died after reserving (row ``reserving``, attachment made): once
    stale, the next agent report deletes the attachment and the row."""
    import datetime

    from stratus.compute import models as m
    from stratus.compute.volumes import RESERVING_STALE

    sid = active(api)
    att = vols(api).create_attachment("p-alice", VOL, sid)["id"]
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=RESERVING_STALE + 1)
    with api.core.db.session() as s:
        s.add(m.BlockDeviceMapping(id="b1", server_id=sid, volume_id=VOL, attachment_id=att,
                                   device="/dev/vdb", delete_on_termination=False,
                                   status="reserving", created_at=old, updated_at=old))
        s.commit()
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[])
    assert vols(api).attachments == {} and vols(api).volumes[VOL]["status"] == "available"
    assert api.ok("GET", P.format(sid), ALICE)["volumeAttachments"] == []


# --- boot from volume (block_device_mapping_v2) ----------------------------------------------
IMAGE_ID = "11111111-1111-4111-8111-111111111111"


def bfv(api: ComputeApi, status: int = 202, **extra: Any) -> Any:
    bdm = {"uuid": IMAGE_ID, "source_type": "image", "destination_type": "volume",
           "boot_index": 0, "volume_size": 1, "delete_on_termination": True, **extra}
    return api.boot(imageRef="", block_device_mapping_v2=[bdm], status=status)


def test_boot_from_an_image_volume_and_an_extra_volume(api: ComputeApi) -> None:
    body = {"server": {"name": "vm", "imageRef": "", "flavorRef": "1", "networks": "none",
                       "block_device_mapping_v2": [
                           {"uuid": IMAGE_ID, "source_type": "image",
                            "destination_type": "volume", "boot_index": 0,
                            "volume_size": 1, "delete_on_termination": True},
                           {"uuid": VOL, "source_type": "volume",
                            "destination_type": "volume", "boot_index": -1}]}}
    sid = api.ok("POST", "/v2.1/servers", ALICE, status=202, json=body)["server"]["id"]
    made = [v for v in vols(api).volumes.values() if v.get("source")]
    assert [v["source"]["imageRef"] for v in made] == [IMAGE_ID]
    srv = api.server(sid)
    assert srv["image"] == "" and srv["status"] == "BUILD"
    assert sorted(v["id"] for v in srv["os-extended-volumes:volumes_attached"]) == sorted(
        [made[0]["id"], VOL])
    bdms = assigned(api, sid)["block_devices"]
    assert [(b["device"], b["boot_index"]) for b in bdms] == [("vda", 0), ("vdb", None)]
    assert all(b["connection_info"]["data"]["target_lun"] == 1 for b in bdms)
    # the agent boots and reports both plugged: both attachments completed
    api.report("cmp1", sid, vm_state="active", power_state=1,
               volumes=[b["attachment_id"] for b in bdms])
    assert {a["status"] for a in vols(api).attachments.values()} == {"attached"}
    # the root volume cannot be detached; delete removes the volume made for the server
    root = made[0]["id"]
    resp = api.call("DELETE", P.format(sid) + f"/{root}", ALICE)
    assert resp.status_code == 400 and "root" in msg(resp)
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
    api.report("cmp1", sid, deleted=True)
    assert root not in vols(api).volumes and VOL in vols(api).volumes
    assert vols(api).attachments == {}


@pytest.mark.parametrize(("extra", "text"), [
    ({"volume_size": None}, "volume_size is required"),
    ({"source_type": "blank", "uuid": None}, "blank volume cannot be the boot"),
    ({"destination_type": "local", "boot_index": 1}, "destination_type"),
    ({"source_type": "blank", "uuid": None, "destination_type": "local", "boot_index": -1},
     "destination_type"),
    ({"source_type": "floppy"}, "source_type"),
    ({"volume_size": 0}, "minimum"),
    ({"uuid": "bad-image"}, "cannot be made"),
])
def test_boot_from_volume_bad_input(api: ComputeApi, extra: dict[str, Any], text: str
                                    ) -> None:
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": "", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"uuid": IMAGE_ID, "source_type": "image",
                                     "destination_type": "volume", "boot_index": 0,
                                     "volume_size": 1, **extra}]}})
    assert resp.status_code == 400, resp.text
    assert text in msg(resp)
    assert api.ok("GET", "/v2.1/servers", ALICE)["servers"] == []
    assert [c for c in vols(api).calls if c[0] == "create_volume"] == []


def test_an_image_root_disk_mapping_is_the_image_boot_openstackclient_sends(api: ComputeApi
                                                                            ) -> None:
    """``openstack server create --image`` sends the image as a local root disk mapping
    (``destination_type local``, boot_index 0) next to imageRef, as Nova accepts it."""
    local = {"uuid": IMAGE_ID, "boot_index": 0, "source_type": "image",
             "destination_type": "local", "delete_on_termination": True}
    for server in ({"imageRef": IMAGE_ID}, {}):
        resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
            "name": "vm", "flavorRef": "1", "networks": "none", "min_count": 1,
            "max_count": 1, "block_device_mapping_v2": [local], **server}})
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        shown = api.ok("GET", f"/v2.1/servers/{sid}", ALICE)["server"]
        assert shown["image"]["id"] == IMAGE_ID
    assert [c for c in vols(api).calls if c[0] == "create_volume"] == []
    other = "22222222-2222-4222-8222-222222222222"
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "flavorRef": "1", "networks": "none", "imageRef": other,
        "block_device_mapping_v2": [local]}})
    assert resp.status_code == 400 and "different images" in msg(resp)


def test_boot_from_volume_refusals_leave_nothing(api: ComputeApi) -> None:
    vols(api).volumes[VOL]["status"] = "in-use"
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"uuid": VOL, "source_type": "volume",
                                     "destination_type": "volume", "boot_index": 0}]}})
    assert resp.status_code == 400 and "not available" in msg(resp)
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 400 and "boot_index 0" in msg(resp)
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": "", "flavorRef": "1", "networks": "none",
        "max_count": 2, "block_device_mapping_v2": [
            {"uuid": IMAGE_ID, "source_type": "image", "destination_type": "volume",
             "boot_index": 0, "volume_size": 1}]}})
    assert resp.status_code == 400 and "max_count" in msg(resp)
    assert api.ok("GET", "/v2.1/servers", ALICE)["servers"] == []
    assert not any(v.get("source") for v in vols(api).volumes.values())


def test_boot_from_volume_export_failure_fails_the_build(api: ComputeApi) -> None:
    vols(api).fail_export = ServiceError("export timed out", status=409)
    sid = bfv(api)["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "ERROR" and "Block device setup failed" in srv["fault"]["message"]
    assert "block_devices" not in assigned(api, sid) if any(
        s["id"] == sid for s in api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")[
            "servers"]) else True
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
    assert not any(v.get("source") for v in vols(api).volumes.values())
    assert vols(api).attachments == {}


def test_a_failed_boot_from_volume_spawn_is_not_rescheduled(api: ComputeApi) -> None:
    api.host("cmp2")
    sid = bfv(api)["server"]["id"]
    host = api.server(sid)["OS-EXT-SRV-ATTR:host"]
    api.report(host, sid, vm_state="error", reschedule=True,
               fault={"code": 500, "message": "qemu could not log in"})
    srv = api.server(sid)
    assert srv["status"] == "ERROR" and "not rescheduled" in srv["fault"]["message"]
    assert "qemu could not log in" in srv["fault"]["message"]


def test_an_extend_while_attached_reaches_the_agent(api: ComputeApi) -> None:
    """The block device carries the volume's size; reports alone never re-read it (no
    polling): Cinder's volume-extended event does, and a larger one goes to the agent."""
    from stratus.compute.external_events import Event, deliver
    sid = active(api)
    vols(api).volumes[VOL]["size"] = 1
    api.ok("POST", P.format(sid), ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    bdm = assigned(api, sid)["block_devices"][0]
    assert bdm["size_gb"] == 1 and "volume_size_gb" not in bdm["connection_info"]
    att_id = bdm["attachment_id"]
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[att_id])
    vols(api).volumes[VOL]["size"] = 3  # os-extend while in-use
    api.report("cmp1", sid, vm_state="active", power_state=1, volumes=[att_id])
    assert assigned(api, sid)["block_devices"][0]["size_gb"] == 1  # no event yet
    event = Event("volume-extended", sid, tag=VOL)
    vols(api).down = True  # the volume API away: nothing changes, nothing fails
    assert deliver(api.core, [event])[0].code == 200
    assert assigned(api, sid)["block_devices"][0]["size_gb"] == 1
    vols(api).down = False
    deliver(api.core, [Event("volume-extended", sid, tag=VOL)])
    assert assigned(api, sid)["block_devices"][0]["size_gb"] == 3


def test_a_boot_from_volume_server_claims_no_local_disk(api: ComputeApi) -> None:
    """The flavor's root disk is not claimed on the host for a server booted from a
    volume (its root disk is the volume); an image boot of the same flavor is refused by
    the DiskFilter, and a delete gives back exactly what was claimed."""
    from stratus.compute import models as m
    api.flavor(name="m1.disk500", disk=500, id="500")

    def claimed() -> int:
        with api.core.db.session() as s:
            host = s.query(m.ComputeHost).filter_by(host="cmp1").one()
            return int(host.claimed_disk)
    before = claimed()
    image = api.boot(flavorRef="500")["server"]["id"]
    assert api.server(image)["status"] == "ERROR"
    assert "DiskFilter" in api.server(image)["fault"]["message"]
    assert claimed() == before
    bdm = {"uuid": IMAGE_ID, "source_type": "image", "destination_type": "volume",
           "boot_index": 0, "volume_size": 1, "delete_on_termination": True}
    sid = api.boot(imageRef="", flavorRef="500", block_device_mapping_v2=[bdm])["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "BUILD" and srv["OS-EXT-SRV-ATTR:host"] == "cmp1", srv
    assert srv["flavor"]["disk"] == 500  # still shown as the flavor has it
    assert claimed() == before
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
    api.report("cmp1", sid, deleted=True)
    assert claimed() == before

