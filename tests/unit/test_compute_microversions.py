"""The compute API's microversions 2.48 to 2.79 (2.80 to 2.96: test_compute_mv_2_80.py),
one boundary at a time: the answer at N-1 and at N differ exactly as Nova's do
(docs/compute-api.md, Microversions), and the new shapes validate against Tempest's own
response schemas. Rebuild's versions (2.54, 2.57, 2.63, 2.75) are in
test_compute_rebuild.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compute_schemas import check

from compute_api import ADMIN, ALICE, IMAGE, ComputeApi, in_process

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def boot(api: ComputeApi, version: str, token: str = ALICE, status: int = 202,
         **attrs: Any) -> Any:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
                       **attrs}}
    resp = api.call("POST", "/v2.1/servers", token, version=version, json=body)
    assert resp.status_code == status, resp.text
    return resp.json()


def active(api: ComputeApi, version: str = "2.47", **attrs: Any) -> str:
    sid = str(boot(api, version, **attrs)["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def get(api: ComputeApi, path: str, version: str, token: str = ADMIN) -> Any:
    resp = api.call("GET", path, token, version=version)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_the_range_is_2_1_to_2_96(api: ComputeApi) -> None:
    doc = get(api, "/v2.1", "2.1")["version"]
    assert (doc["min_version"], doc["version"]) == ("2.1", "2.96")
    assert api.call("GET", "/v2.1/flavors", version="2.96").status_code == 200
    resp = api.call("GET", "/v2.1/flavors", version="2.97")
    assert resp.status_code == 406 and "maximum is 2.96" in resp.text
    latest = api.call("GET", "/v2.1/flavors", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.96"


def test_2_48_diagnostics_in_the_standard_form(api: ComputeApi) -> None:
    sid = active(api)
    old = get(api, f"/v2.1/servers/{sid}/diagnostics", "2.47")
    assert old["memory_details"] == {"maxmem": 512} and "cpu_details" not in old
    new = check(api.call("GET", f"/v2.1/servers/{sid}/diagnostics", version="2.48"),
                "servers", "show_server_diagnostics", "2.48")
    assert new["memory_details"] == {"maximum": 512, "used": None}
    assert new["num_cpus"] == 1 and new["state"] == "running"


def test_2_52_tags_at_create(api: ComputeApi) -> None:
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.51", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "tags": ["a"]}})
    assert resp.status_code == 400 and "tags" in resp.text
    sid = active(api, "2.52", tags=["a", "b"])
    assert get(api, f"/v2.1/servers/{sid}", "2.52")["server"]["tags"] == ["a", "b"]
    for bad in (["a/b"], ["x" * 61], "a", [1]):
        boot(api, "2.52", status=400, tags=bad)


def test_2_19_description_is_kept(api: ComputeApi) -> None:
    sid = active(api, "2.19", description="web server")
    assert get(api, f"/v2.1/servers/{sid}", "2.19")["server"]["description"] == "web server"
    upd = {"server": {"description": "db server"}}
    resp = api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.19", json=upd)
    assert resp.json()["server"]["description"] == "db server"
    assert api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.18",
                    json=upd).status_code == 400


def test_2_53_services_and_hypervisors_by_uuid(api: ComputeApi) -> None:
    sid = active(api)
    old = get(api, "/v2.1/os-services", "2.52")["services"][0]
    assert isinstance(old["id"], int)
    new = check(api.call("GET", "/v2.1/os-services", version="2.53"), "services",
                "list_services", "2.53")["services"][0]
    assert str(uuid.UUID(new["id"])) == new["id"]
    path = f"/v2.1/os-services/{new['id']}"
    body = {"status": "disabled", "disabled_reason": "maintenance"}
    shown = check(api.call("PUT", path, version="2.53", json=body), "services",
                  "update_service", "2.53")["service"]
    assert shown["status"] == "disabled" and shown["disabled_reason"] == "maintenance"
    shown = check(api.call("PUT", path, version="2.53", json={"status": "enabled"}),
                  "services", "update_service", "2.53")["service"]
    assert shown["status"] == "enabled" and shown["disabled_reason"] is None
    for bad in ({"status": "enabled", "disabled_reason": "x"}, {"status": "off"}, {},
                {"host": "cmp1"}):
        assert api.call("PUT", path, version="2.53", json=bad).status_code == 400, bad
    assert api.call("PUT", "/v2.1/os-services/disable", version="2.53",
                    json={"host": "cmp1"}).status_code == 404
    assert api.call("PUT", "/v2.1/os-services/disable", version="2.52",
                    json={"host": "cmp1"}).status_code == 200
    # hypervisors: UUID ids, found by them only, with_servers and the name pattern
    hyps = check(api.call("GET", "/v2.1/os-hypervisors?with_servers=true", version="2.53"),
                 "hypervisors", "list_search_hypervisors", "2.53")["hypervisors"]
    assert hyps[0]["id"] == new["id"] and hyps[0]["servers"] == [{"uuid": sid, "name": "vm"}]
    one = check(api.call("GET", f"/v2.1/os-hypervisors/{new['id']}", version="2.53"),
                "hypervisors", "get_hypervisor", "2.53")["hypervisor"]
    assert one["service"]["id"] == new["id"] and "servers" not in one
    assert api.call("GET", f"/v2.1/os-hypervisors/{old['id']}",
                    version="2.53").status_code == 404
    assert api.call("GET", f"/v2.1/os-hypervisors/{old['id']}",
                    version="2.52").status_code == 200
    assert len(get(api, "/v2.1/os-hypervisors?hypervisor_hostname_pattern=cmp",
                   "2.53")["hypervisors"]) == 1
    assert api.call("GET", "/v2.1/os-hypervisors?hypervisor_hostname_pattern=zz",
                    version="2.53").status_code == 404
    assert api.call("GET", "/v2.1/os-hypervisors?with_servers=true",
                    version="2.52").status_code == 400


def test_2_55_flavor_description_and_update(api: ComputeApi) -> None:
    body = {"flavor": {"name": "d", "vcpus": 1, "ram": 64, "disk": 1, "description": "x"}}
    assert api.call("POST", "/v2.1/flavors", version="2.54", json=body).status_code == 400
    made = check(api.call("POST", "/v2.1/flavors", version="2.55", json=body), "flavors",
                 "create_update_get_flavor_details", "2.55")["flavor"]
    assert made["description"] == "x"
    assert "description" not in get(api, f"/v2.1/flavors/{made['id']}", "2.54")["flavor"]
    listed = check(api.call("GET", "/v2.1/flavors", version="2.55"), "flavors",
                   "list_flavors", "2.55")["flavors"]
    assert {f["id"]: f["description"] for f in listed}[made["id"]] == "x"
    upd = {"flavor": {"description": "y"}}
    path = f"/v2.1/flavors/{made['id']}"
    assert api.call("PUT", path, version="2.54", json=upd).status_code == 405
    assert api.call("PUT", path, ALICE, version="2.55", json=upd).status_code == 403
    shown = check(api.call("PUT", path, version="2.55", json=upd), "flavors",
                  "create_update_get_flavor_details", "2.55")["flavor"]
    assert shown["description"] == "y"
    assert api.call("PUT", path, version="2.55",
                    json={"flavor": {"name": "z"}}).status_code == 400


def test_2_57_personality_is_gone(api: ComputeApi) -> None:
    files = [{"path": "/etc/motd", "contents": "aGk="}]
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.56", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "personality": files}})
    assert resp.status_code == 400 and "Personality file injection" in resp.text
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.57", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "personality": files}})
    assert resp.status_code == 400 and "personality" in resp.text
    old = get(api, "/v2.1/limits", "2.56", ALICE)["limits"]["absolute"]
    new = check(api.call("GET", "/v2.1/limits", ALICE, version="2.57"), "limits",
                "get_limit", "2.57")["limits"]["absolute"]
    assert set(old) - set(new) == {"maxPersonality", "maxPersonalitySize"}
    old_q = get(api, "/v2.1/os-quota-sets/p-alice", "2.56", ALICE)["quota_set"]
    new_q = check(api.call("GET", "/v2.1/os-quota-sets/p-alice", ALICE, version="2.57"),
                  "quotas", "get_quota_set", "2.57")["quota_set"]
    assert set(old_q) - set(new_q) == {"injected_files", "injected_file_content_bytes",
                                       "injected_file_path_bytes"}
    upd = {"quota_set": {"injected_files": 3}}
    assert api.call("PUT", "/v2.1/os-quota-sets/p-alice", version="2.57",
                    json=upd).status_code == 400


def test_2_60_multiattach_volumes(api: ComputeApi) -> None:
    from test_compute_volumes_api import VOL, FakeVolumes

    api.fake.volumes = FakeVolumes()  # type: ignore[attr-defined]
    api.fake.volumes.volume(VOL)
    api.fake.volumes.volumes[VOL]["multiattach"] = True
    sid = active(api)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    body = {"volumeAttachment": {"volumeId": VOL}}
    resp = api.call("POST", path, ALICE, version="2.59", json=body)
    assert resp.status_code == 400 and "2.60" in resp.text
    assert get(api, path, "2.59", ALICE)["volumeAttachments"] == []  # nothing half-made
    assert api.call("POST", path, ALICE, version="2.60", json=body).status_code == 200


def test_2_61_flavor_extra_specs_and_2_75_swap(api: ComputeApi) -> None:
    api.ok("POST", "/v2.1/flavors/1/os-extra_specs",
           json={"extra_specs": {"hw:cpu_policy": "shared"}})
    assert "extra_specs" not in get(api, "/v2.1/flavors/1", "2.60")["flavor"]
    shown = check(api.call("GET", "/v2.1/flavors/1", version="2.61"), "flavors",
                  "create_update_get_flavor_details", "2.61")["flavor"]
    assert shown["extra_specs"] == {"hw:cpu_policy": "shared"} and shown["swap"] == ""
    assert get(api, "/v2.1/flavors/1", "2.75")["flavor"]["swap"] == 0


def test_2_63_trusted_image_certificates(api: ComputeApi) -> None:
    sid = active(api)
    assert "trusted_image_certificates" not in get(api, f"/v2.1/servers/{sid}",
                                                   "2.62")["server"]
    srv = check(api.call("GET", f"/v2.1/servers/{sid}", version="2.63"), "servers",
                "get_server", "2.63")["server"]
    assert srv["trusted_image_certificates"] is None
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.63", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "trusted_image_certificates": ["0b5d2c72-12cc-4ba6-a8d7-3ff5cc1d8cb8"]}})
    assert resp.status_code == 400 and "certificate validation" in resp.text
    boot(api, "2.62", status=400, trusted_image_certificates=["x"])


def test_2_64_server_group_policy_and_rules(api: ComputeApi) -> None:
    old = get(api, "/v2.1/os-server-groups", "2.63", ALICE)
    assert old == {"server_groups": []}
    body = {"server_group": {"name": "g", "policy": "anti-affinity"}}
    made = check(api.call("POST", "/v2.1/os-server-groups", ALICE, version="2.64",
                          json=body), "server_groups", "create_show_server_group",
                 "2.64")["server_group"]
    assert made["policy"] == "anti-affinity" and made["rules"] == {"max_server_per_host": 1}
    shown = get(api, f"/v2.1/os-server-groups/{made['id']}", "2.63", ALICE)["server_group"]
    assert shown["policies"] == ["anti-affinity"] and "rules" not in shown
    for bad, word in (({"policy": "anti-affinity", "rules": {"max_server_per_host": 2}},
                       "greater than 1"),
                      ({"policy": "affinity", "rules": {"max_server_per_host": 1}},
                       "Only anti-affinity"),
                      ({"policy": "nope"}, "policy"),
                      ({"policies": ["affinity"]}, "policies")):
        resp = api.call("POST", "/v2.1/os-server-groups", ALICE, version="2.64",
                        json={"server_group": {"name": "g", **bad}})
        assert resp.status_code == 400 and word in resp.text, resp.text


def test_2_66_changes_before(api: ComputeApi) -> None:
    sid = active(api)
    updated = get(api, f"/v2.1/servers/{sid}", "2.66")["server"]["updated"]
    later, earlier = "2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z"

    def ids(query: str, version: str) -> list[str]:
        return [s["id"] for s in get(api, f"/v2.1/servers?{query}", version, ALICE)["servers"]]

    assert ids(f"changes-before={earlier}", "2.65") == [sid]  # not a filter before 2.66
    assert ids(f"changes-before={earlier}", "2.66") == []
    assert ids(f"changes-before={later}", "2.66") == [sid]
    assert ids(f"changes-since={updated}&changes-before={later}", "2.66") == [sid]
    resp = api.call("GET", f"/v2.1/servers?changes-since={later}&changes-before={earlier}",
                    ALICE, version="2.66")
    assert resp.status_code == 400 and "changes-since" in resp.text
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE, status=204)
    api.report("cmp1", sid, deleted=True)
    listed = get(api, f"/v2.1/servers/detail?changes-before={later}", "2.66", ALICE)
    assert [(s["id"], s["status"]) for s in listed["servers"]] == [(sid, "DELETED")]


def test_2_67_volume_type_in_block_devices(api: ComputeApi) -> None:
    from test_compute_volumes_api import FakeVolumes

    api.fake.volumes = FakeVolumes()  # type: ignore[attr-defined]
    bdm = [{"source_type": "image", "uuid": IMAGE, "destination_type": "volume",
            "boot_index": 0, "volume_size": 1, "volume_type": "fast"}]
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.66", json={"server": {
        "name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": bdm}})
    assert resp.status_code == 400 and "2.67" in resp.text
    boot(api, "2.67", block_device_mapping_v2=bdm)
    made = [v for v in api.fake.volumes.volumes.values()]
    assert [v["source"].get("volume_type") for v in made] == ["fast"]
    existing = [{"source_type": "volume", "uuid": made[0]["id"], "boot_index": 0,
                 "destination_type": "volume", "volume_type": "fast"}]
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.67", json={"server": {
        "name": "vm2", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": existing}})
    assert resp.status_code == 400 and "volume_type" in resp.text


def test_2_70_to_2_73_server_and_interface_fields(api: ComputeApi) -> None:
    net = api.fake.network("net-a")
    body = {"server_group": {"name": "g", "policies": ["affinity"]}}
    group = api.ok("POST", "/v2.1/os-server-groups", ALICE, json=body)["server_group"]
    sid = str(api.call("POST", "/v2.1/servers", ALICE, version="2.47", json={
        "server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1",
                   "networks": [{"uuid": net["id"]}]},
        "os:scheduler_hints": {"group": group["id"]}}).json()["server"]["id"])
    api.report("cmp1", sid, vm_state="active", power_state=1)
    path = f"/v2.1/servers/{sid}/os-interface"
    assert "tag" not in get(api, path, "2.69", ALICE)["interfaceAttachments"][0]
    iface = check(api.call("GET", path, ALICE, version="2.70"), "interfaces",
                  "list_interfaces", "2.70")["interfaceAttachments"][0]
    assert iface["tag"] is None
    assert "server_groups" not in get(api, f"/v2.1/servers/{sid}", "2.70", ALICE)["server"]
    srv = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE, version="2.71"), "servers",
                "get_server", "2.71")["server"]
    assert srv["server_groups"] == [group["id"]] and "locked_reason" not in srv
    srv = check(api.call("GET", f"/v2.1/servers/{sid}", ALICE, version="2.73"), "servers",
                "get_server", "2.73")["server"]
    assert srv["locked_reason"] is None
    detail = check(api.call("GET", "/v2.1/servers/detail", ALICE, version="2.73"), "servers",
                   "list_servers_detail", "2.73")["servers"][0]
    assert "server_groups" not in detail and detail["locked_reason"] is None


def test_2_74_host_at_create(api: ComputeApi) -> None:
    boot(api, "2.73", ADMIN, status=400, host="cmp1")
    boot(api, "2.74", ALICE, status=403, host="cmp1")
    boot(api, "2.74", ADMIN, status=400, host="nowhere")
    boot(api, "2.74", ADMIN, status=400, host="cmp1", hypervisor_hostname="cmp2")
    sid = boot(api, "2.74", ADMIN, host="cmp1")["server"]["id"]
    assert api.server(sid)["OS-EXT-SRV-ATTR:host"] == "cmp1"
    sid = boot(api, "2.74", ADMIN, hypervisor_hostname="cmp1")["server"]["id"]
    assert api.server(sid)["OS-EXT-SRV-ATTR:host"] == "cmp1"


def test_2_75_update_answers_the_full_server(api: ComputeApi) -> None:
    sid = active(api)
    upd = {"server": {"name": "renamed"}}
    old = api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.74", json=upd).json()
    assert "OS-EXT-STS:vm_state" not in old["server"]
    new = check(api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version="2.75", json=upd),
                "servers", "update_server", "2.75")["server"]
    assert new["OS-EXT-STS:vm_state"] == "active" and new["name"] == "renamed"


def test_2_78_topology(api: ComputeApi) -> None:
    sid = active(api)
    assert api.call("GET", f"/v2.1/servers/{sid}/topology", ALICE,
                    version="2.77").status_code == 404
    assert get(api, f"/v2.1/servers/{sid}/topology", "2.78", ALICE) == {
        "nodes": [], "pagesize_kb": None}
    assert api.call("GET", "/v2.1/servers/44444444-4444-4444-8444-444444444444/topology",
                    ALICE, version="2.78").status_code == 404
