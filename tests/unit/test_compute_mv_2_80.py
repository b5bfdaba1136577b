"""The compute API's microversions 2.80 to 2.96, each boundary at N-1 and N: the answer
differs exactly as Nova's does (docs/compute-api.md, Microversions), new shapes validate
against Tempest's own response schemas where Tempest has them (2.89, 2.96), and what Stratus
cannot do gets Nova's refusal. The versions that change APIs Stratus does not have
(rescue 2.87, shelve 2.91, evacuate 2.95) are checked to stay refused as unknown actions;
aggregates' image cache (2.81, refused with 400) is in test_compute_aggregates.py,
instance actions (2.84's event details) in test_compute_instance_actions.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_microversions import active, boot, get
from test_compute_schemas import check
from test_compute_volumes_api import VOL, FakeVolumes

from compute_api import ADMIN, ALICE, BOB, IMAGE, ComputeApi, in_process

pytestmark = pytest.mark.unit
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb3cpnV/r24G8PYeiTzTHyyyjeqyzOUV"
              "3ZX9Pc5Y5xb test")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        vols = FakeVolumes()
        vols.volume(VOL)
        client.fake.volumes = vols
        yield client


def call(api: ComputeApi, method: str, path: str, version: str, token: str = ALICE,
         **kw: Any) -> Any:
    return api.call(method, path, token, version=version, **kw)


def test_apis_stratus_does_not_have_stay_refused(api: ComputeApi) -> None:
    sid = active(api)
    actions: list[dict[str, Any]] = [{"rescue": {}}, {"shelve": None},
                                     {"unshelve": {"host": "cmp1"}}, {"evacuate": {}}]
    for action in actions:
        resp = call(api, "POST", f"/v2.1/servers/{sid}/action", "2.96", ADMIN, json=action)
        assert resp.status_code == 400 and "no such action" in resp.text


def test_2_80_migrations_by_user_and_project(api: ComputeApi) -> None:
    api.flavor(name="m1.small", id="2", vcpus=2, ram=1024)
    sid = active(api)
    resp = call(api, "POST", f"/v2.1/servers/{sid}/action", "2.47",
                json={"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202, resp.text
    path = "/v2.1/os-migrations"
    old = call(api, "GET", f"{path}?user_id=u-alice", "2.79", ADMIN)
    assert old.status_code == 400 and "user_id" in old.text
    for query, found in (("user_id=u-alice", 1), ("project_id=p-alice", 1),
                         ("user_id=u-bob", 0), ("project_id=p-bob", 0)):
        migs = check(call(api, "GET", f"{path}?{query}", "2.80", ADMIN), "migrations",
                     "list_migrations", "2.80")["migrations"]
        assert len(migs) == found, query
        assert all((x["user_id"], x["project_id"]) == ("u-alice", "p-alice") for x in migs)


def test_2_82_accelerator_request_bound_event(api: ComputeApi) -> None:
    sid = active(api)
    event = {"events": [{"name": "accelerator-request-bound", "server_uuid": sid,
                         "tag": "arq-1"}]}
    old = call(api, "POST", "/v2.1/os-server-external-events", "2.81", ADMIN, json=event)
    assert old.status_code == 400 and "accelerator-request-bound" not in \
        old.json()["badRequest"]["message"].split("Allowed")[1]
    new = call(api, "POST", "/v2.1/os-server-external-events", "2.82", ADMIN, json=event)
    assert new.status_code == 200 and new.json()["events"][0]["code"] == 200


def test_2_83_owner_filters(api: ComputeApi) -> None:
    api.ok("POST", "/v2.1/os-keypairs", ALICE, status=201, json={"keypair": {
        "name": "k", "public_key": PUBLIC_KEY}})
    with_key = active(api, key_name="k")
    stopped = active(api)
    api.report("cmp1", stopped, vm_state="stopped", power_state=4)

    def names(query: str, version: str, token: str = ALICE) -> set[str]:
        body = get(api, f"/v2.1/servers/detail?{query}", version, token)
        return {s["id"] for s in body["servers"]}

    both = {with_key, stopped}
    # below 2.83 an owner's filters of this kind are ignored (Nova strips them)
    assert names("key_name=k", "2.82") == both
    assert names("vm_state=stopped", "2.82") == both
    assert names("key_name=k", "2.83") == {with_key}
    assert names("vm_state=stopped", "2.83") == {stopped}
    assert names("power_state=4", "2.83") == {stopped}
    assert names("power_state=running", "2.83") == {with_key}
    assert names("config_drive=false", "2.83") == both
    assert names("user_id=someone-else", "2.83") == set()
    assert names("availability_zone=nowhere", "2.83") == set()
    today = get(api, f"/v2.1/servers/{stopped}", "2.83", ALICE)["server"]["created"][:10]
    assert names(f"created_at=^{today}", "2.83") == both
    assert names("created_at=^1999-", "2.83") == set()
    assert names("terminated_at=.", "2.83") == set()  # none is deleted
    assert names("created_at=^1999-", "2.82") == both  # ignored below 2.83
    progress = get(api, f"/v2.1/servers/{with_key}", "2.83", ALICE)["server"]["progress"]
    assert with_key in names(f"progress={progress}", "2.83")
    assert names(f"progress={(progress + 37) % 101}", "2.83") == set()
    # an admin could always use them
    assert names("vm_state=stopped&all_tenants=1", "2.82", ADMIN) == {stopped}
    resp = call(api, "GET", "/v2.1/servers/detail?power_state=sleepy", "2.83")
    assert resp.status_code == 400 and "power_state" in resp.text


def test_2_85_update_delete_on_termination(api: ComputeApi) -> None:
    sid = active(api)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    api.ok("POST", path, ALICE, json={"volumeAttachment": {"volumeId": VOL}})
    body = {"volumeAttachment": {"volumeId": VOL, "delete_on_termination": True}}
    old = call(api, "PUT", f"{path}/{VOL}", "2.84", ADMIN, json=body)
    assert old.status_code == 400 and "delete_on_termination" in old.text
    # below 2.85 a PUT is a swap to another volume: Stratus cannot do it (409)
    swap = call(api, "PUT", f"{path}/{VOL}", "2.84", ADMIN,
                json={"volumeAttachment": {"volumeId": "33333333-3333-4333-8333-333333333333"}})
    assert swap.status_code == 409 and "Swapping" in swap.text
    assert call(api, "PUT", f"{path}/{VOL}", "2.85", json=body).status_code == 202
    shown = get(api, f"{path}/{VOL}", "2.85", ALICE)["volumeAttachment"]
    assert shown["delete_on_termination"] is True
    moved = {"volumeAttachment": {"volumeId": VOL, "device": "/dev/vdz"}}
    resp = call(api, "PUT", f"{path}/{VOL}", "2.85", json=moved)
    assert resp.status_code == 400 and "device" in resp.text
    assert call(api, "PUT", f"{path}/{VOL}", "2.85", BOB, json=body).status_code == 404


@pytest.mark.parametrize(("key", "value", "ok"), [
    ("hw:cpu_policy", "dedicated", True), ("hw:cpu_policy", "sometimes", False),
    ("hw:no_such_thing", "1", False), ("hw:numa_cpus.0", "0-1", True),
    ("hw:mem_page_size", "2MB", True), ("quota:disk_read_bytes_sec", "x", False),
    ("hw_rng:allowed", "True", True), ("vendor:anything", "at all", True),
    ("plain_key", "v", True)])
def test_2_86_extra_spec_validation(api: ComputeApi, key: str, value: str, ok: bool) -> None:
    path = "/v2.1/flavors/1/os-extra_specs"
    body = {"extra_specs": {key: value}}
    assert call(api, "POST", path, "2.85", ADMIN, json=body).status_code == 200
    resp = call(api, "POST", path, "2.86", ADMIN, json=body)
    assert resp.status_code == (200 if ok else 400), resp.text
    put = call(api, "PUT", f"{path}/{key}", "2.86", ADMIN, json={key: value})
    assert put.status_code == (200 if ok else 400), put.text
    if not ok:
        assert key in resp.json()["badRequest"]["message"]


def test_2_88_hypervisors(api: ComputeApi) -> None:
    old = get(api, "/v2.1/os-hypervisors/detail", "2.87")["hypervisors"][0]
    assert "cpu_info" in old and "vcpus" in old and "uptime" not in old
    new = get(api, "/v2.1/os-hypervisors/detail", "2.88")["hypervisors"][0]
    assert set(new) == {"id", "hypervisor_hostname", "state", "status", "hypervisor_type",
                        "hypervisor_version", "host_ip", "uptime", "service"}
    shown = get(api, f"/v2.1/os-hypervisors/{new['id']}", "2.88")["hypervisor"]
    assert shown == new
    assert call(api, "GET", "/v2.1/os-hypervisors/statistics", "2.87", ADMIN
                ).status_code == 200
    assert call(api, "GET", "/v2.1/os-hypervisors/statistics", "2.88", ADMIN
                ).status_code == 404


def test_2_89_attachment_ids(api: ComputeApi) -> None:
    sid = active(api)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    made = check(call(api, "POST", path, "2.89", json={"volumeAttachment": {"volumeId": VOL}}),
                 "servers", "attach_volume", "2.89")["volumeAttachment"]
    assert made["id"] == VOL and "attachment_id" not in made  # as Nova's attach answers
    old = get(api, f"{path}/{VOL}", "2.88", ALICE)["volumeAttachment"]
    assert old["id"] == VOL and "attachment_id" not in old
    new = check(call(api, "GET", f"{path}/{VOL}", "2.89"), "servers",
                "show_volume_attachment", "2.89")["volumeAttachment"]
    assert "id" not in new and new["attachment_id"] and new["bdm_uuid"]
    check(call(api, "GET", path, "2.89"), "servers", "list_volume_attachments", "2.89")


def test_2_90_and_2_94_hostname(api: ComputeApi) -> None:
    boot(api, "2.89", status=400, hostname="web-1")
    sid = active(api, "2.90", hostname="web-1")
    assert get(api, f"/v2.1/servers/{sid}", "2.89", ALICE)["server"].get(
        "OS-EXT-SRV-ATTR:hostname") is None  # only admins below 2.90
    assert get(api, f"/v2.1/servers/{sid}", "2.90", ALICE)["server"][
        "OS-EXT-SRV-ATTR:hostname"] == "web-1"
    # the agent's assignment (and so the guest's metadata) carries it
    assigned = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"]
    assert next(a for a in assigned if a["id"] == sid)["hostname"] == "web-1"
    upd = {"server": {"hostname": "web-2"}}
    assert call(api, "PUT", f"/v2.1/servers/{sid}", "2.89", json=upd).status_code == 400
    shown = call(api, "PUT", f"/v2.1/servers/{sid}", "2.90", json=upd).json()["server"]
    assert shown["OS-EXT-SRV-ATTR:hostname"] == "web-2"
    rebuild = {"rebuild": {"imageRef": IMAGE, "hostname": "web-3"}}
    resp = call(api, "POST", f"/v2.1/servers/{sid}/action", "2.90", json=rebuild)
    assert resp.status_code == 202 and resp.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == \
        "web-3"
    for bad in ("-web", "web_1", "x" * 64, "web.example.com", 7):
        boot(api, "2.90", status=400, hostname=bad)
    boot(api, "2.90", status=400, hostname="web", max_count=2)
    # 2.94: a fully qualified name
    fqdn = "web.example.com"
    sid2 = active(api, "2.94", hostname=fqdn)
    assert get(api, f"/v2.1/servers/{sid2}", "2.94", ALICE)["server"][
        "OS-EXT-SRV-ATTR:hostname"] == fqdn
    boot(api, "2.94", status=400, hostname="web..example.com")
    boot(api, "2.94", status=400, hostname="a." * 128)


def test_2_92_keypairs_are_imported_only(api: ComputeApi) -> None:
    made = call(api, "POST", "/v2.1/os-keypairs", "2.91", json={"keypair": {"name": "gen"}})
    assert made.status_code == 201 and made.json()["keypair"]["private_key"]
    resp = call(api, "POST", "/v2.1/os-keypairs", "2.92", json={"keypair": {"name": "gen2"}})
    assert resp.status_code == 400 and "public_key" in resp.text
    dotted = {"keypair": {"name": "me@host.x", "public_key": PUBLIC_KEY}}
    assert call(api, "POST", "/v2.1/os-keypairs", "2.91", json=dotted).status_code == 400
    check(call(api, "POST", "/v2.1/os-keypairs", "2.92", json=dotted), "keypairs",
          "create_keypair", "2.92")


def test_2_93_volume_backed_rebuild_refused_as_nova(api: ComputeApi) -> None:
    bdm = [{"uuid": IMAGE, "source_type": "image", "destination_type": "volume",
            "boot_index": 0, "volume_size": 1}]
    sid = str(boot(api, "2.92", imageRef="", block_device_mapping_v2=bdm)["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    rebuild = {"rebuild": {"imageRef": IMAGE}}
    old = call(api, "POST", f"/v2.1/servers/{sid}/action", "2.92", json=rebuild)
    assert old.status_code == 400 and "volume-backed" in old.text
    new = call(api, "POST", f"/v2.1/servers/{sid}/action", "2.93", json=rebuild)
    assert new.status_code == 409 and "volume-backed" in new.text
    assert get(api, f"/v2.1/servers/{sid}", "2.93", ALICE)["server"]["status"] == "ACTIVE"


def test_2_96_pinned_availability_zone(api: ComputeApi) -> None:
    zone = get(api, "/v2.1/os-availability-zone", "2.1")["availabilityZoneInfo"][0]["zoneName"]
    pinned = active(api, "2.96", availability_zone=zone)
    free = active(api, "2.96")
    assert "pinned_availability_zone" not in get(api, f"/v2.1/servers/{pinned}", "2.95",
                                                 ALICE)["server"]
    for sid, want in ((pinned, zone), (free, None)):
        srv = check(call(api, "GET", f"/v2.1/servers/{sid}", "2.96"), "servers",
                    "get_server", "2.96")["server"]
        assert srv["pinned_availability_zone"] == want
    check(call(api, "GET", "/v2.1/servers/detail", "2.96"), "servers",
          "list_servers_detail", "2.96")
    check(call(api, "PUT", f"/v2.1/servers/{pinned}", "2.96",
               json={"server": {"name": "n"}}), "servers", "update_server", "2.96")
    check(call(api, "POST", f"/v2.1/servers/{pinned}/action", "2.96",
               json={"rebuild": {"imageRef": IMAGE}}), "servers",
          "rebuild_server_with_admin_pass", "2.96")
