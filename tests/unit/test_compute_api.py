"""The compute API in-process with fake image/network APIs: shapes, validation, states,
quotas, agent endpoints."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ADMIN, ALICE, BOB, IMAGE, READER, ComputeApi, in_process
from stratus.common.clients import ServiceError

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def err(resp: Any) -> tuple[str, str]:
    key, value = next(iter(resp.json().items()))
    return key, value["message"]


def active(api: ComputeApi, **attrs: Any) -> dict[str, Any]:
    sid = api.boot(**attrs)["server"]["id"]
    srv = api.server(sid)
    api.report(srv["OS-EXT-SRV-ATTR:host"], sid, vm_state="active", power_state=1)
    return api.server(sid)


def test_versions_and_microversion_headers(api: ComputeApi) -> None:
    versions = api.client.get("/").json()["versions"]
    v21 = next(v for v in versions if v["id"] == "v2.1")
    assert v21["version"] == "2.96" and v21["min_version"] == "2.1"
    resp = api.call("GET", "/v2.1/flavors", version="2.30")
    assert resp.headers["OpenStack-API-Version"] == "compute 2.30"
    assert api.call("GET", "/v2.1/flavors", version="latest").headers[
        "X-OpenStack-Nova-API-Version"] == "2.96"
    resp = api.call("GET", "/v2.1/flavors", version="2.99")
    assert resp.status_code == 406 and "maximum is 2.96" in resp.text
    assert api.call("GET", "/v2.1/flavors", version="abc").status_code == 400
    assert api.call("GET", "/v2.1/flavors", version=None).headers[
        "X-OpenStack-Nova-API-Version"] == "2.1"
    assert api.client.get("/v2.1/servers").status_code == 401


def test_flavors_admin_only_filters_and_private_access(api: ComputeApi) -> None:
    resp = api.call("POST", "/v2.1/flavors", ALICE, json={"flavor": {
        "name": "x", "vcpus": 1, "ram": 1, "disk": 1}})
    assert resp.status_code == 403 and err(resp)[0] == "forbidden"
    big = api.flavor("m1.big", vcpus=4, ram=4096, disk=40)
    private = api.flavor("p1", **{"os-flavor-access:is_public": False})
    names = {f["name"] for f in api.ok("GET", "/v2.1/flavors?minRam=1024", ALICE)["flavors"]}
    assert names == {"m1.big"}
    assert api.call("GET", f"/v2.1/flavors/{private['id']}", ALICE).status_code == 404
    api.ok("POST", f"/v2.1/flavors/{private['id']}/action",
           json={"addTenantAccess": {"tenant": "p-alice"}})
    assert api.ok("GET", f"/v2.1/flavors/{private['id']}", ALICE)["flavor"]["name"] == "p1"
    access = api.ok("GET", f"/v2.1/flavors/{private['id']}/os-flavor-access")
    assert access["flavor_access"] == [{"flavor_id": private["id"], "tenant_id": "p-alice"}]
    api.ok("POST", f"/v2.1/flavors/{big['id']}/os-extra_specs",
           json={"extra_specs": {"hw:cpu_policy": "shared"}})
    assert api.ok("GET", f"/v2.1/flavors/{big['id']}/os-extra_specs/hw:cpu_policy") == {
        "hw:cpu_policy": "shared"}
    api.ok("DELETE", f"/v2.1/flavors/{big['id']}/os-extra_specs/hw:cpu_policy", status=200)
    dup = api.call("POST", "/v2.1/flavors", json={"flavor": {
        "name": "m1.big", "vcpus": 1, "ram": 1, "disk": 1}})
    assert dup.status_code == 409
    bad = api.call("POST", "/v2.1/flavors", json={"flavor": {"name": "z", "vcpus": 0,
                                                             "ram": 1, "disk": 1}})
    assert bad.status_code == 400 and "vcpus" in err(bad)[1]
    assert api.call("DELETE", f"/v2.1/flavors/{big['id']}").status_code == 202


def test_keypairs_import_generate_and_fingerprint(api: ComputeApi) -> None:
    gen = api.ok("POST", "/v2.1/os-keypairs", ALICE, status=201,
                 json={"keypair": {"name": "gen"}})["keypair"]
    assert gen["private_key"].startswith("-----BEGIN") and gen["type"] == "ssh"
    assert len(gen["fingerprint"].split(":")) == 16
    imported = api.ok("POST", "/v2.1/os-keypairs", ALICE, status=201, json={
        "keypair": {"name": "imp", "public_key": gen["public_key"]}})["keypair"]
    assert "private_key" not in imported and imported["fingerprint"] == gen["fingerprint"]
    listed = api.ok("GET", "/v2.1/os-keypairs", ALICE)["keypairs"]
    assert {k["keypair"]["name"] for k in listed} == {"gen", "imp"}
    assert api.ok("GET", "/v2.1/os-keypairs", BOB)["keypairs"] == []
    bad = api.call("POST", "/v2.1/os-keypairs", ALICE,
                   json={"keypair": {"name": "b", "public_key": "ssh-rsa notbase64!"}})
    assert bad.status_code == 400 and "invalid" in err(bad)[1]
    assert api.call("POST", "/v2.1/os-keypairs", ALICE,
                    json={"keypair": {"name": "gen"}}).status_code == 409
    api.ok("DELETE", "/v2.1/os-keypairs/imp", ALICE)
    assert api.call("GET", "/v2.1/os-keypairs/imp", ALICE).status_code == 404


def test_boot_with_a_network_places_binds_and_shapes_the_server(api: ComputeApi) -> None:
    net = api.fake.network("app-net")
    key = api.ok("POST", "/v2.1/os-keypairs", ALICE, status=201,
                 json={"keypair": {"name": "ops", "key_type": "ed25519"}})["keypair"]
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    resp = api.boot(networks=[{"uuid": net["id"]}], key_name="ops", user_data=user_data,
                    metadata={"role": "web"}, security_groups=[{"name": "default"}],
                    config_drive=True)
    sid = resp["server"]["id"]
    srv = api.server(sid, ALICE)
    assert srv["status"] == "BUILD" and srv["OS-EXT-STS:task_state"] == "spawning"
    assert "OS-EXT-SRV-ATTR:host" not in srv  # admin only
    assert srv["flavor"]["original_name"] == "m1.tiny" and srv["flavor"]["vcpus"] == 1
    addr = srv["addresses"]["app-net"][0]
    assert addr["OS-EXT-IPS:type"] == "fixed" and addr["OS-EXT-IPS-MAC:mac_addr"]
    port = next(iter(api.fake.ports.values()))
    assert port["device_id"] == sid and port["binding:host_id"] == "cmp1"
    assert port["device_owner"] == "compute:nova"
    assert port["security_groups"] == ["sg-default-p-alice"]
    # The agent sees its assignment with what it needs.
    work = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")
    a = work["servers"][0]
    assert a["id"] == sid and a["image"]["checksum"] == "abc" and a["config_drive"] is True
    assert a["ports"][0]["device_name"] == f"tap{port['id'][:11]}"
    doc = a["metadata_document"]
    assert doc["keys"][0]["data"] == key["public_key"] and doc["user_data"] == user_data
    assert doc["networks"][0]["subnet"]["cidr"] == "192.168.10.0/24"
    assert doc["meta"] == {"role": "web"}
    # stratus-metadata's EC2 instance-type, ami-id and security-groups come from these.
    assert doc["flavor_name"] == "m1.tiny" and doc["image_id"] == IMAGE
    assert doc["security_groups"] == ["default"]
    from stratus.contracts.metadata_tree import ec2_metadata
    ec2 = ec2_metadata(doc)
    assert ec2["instance-type"] == "m1.tiny" and ec2["security-groups"] == ["default"]
    assert ec2["ami-id"] == "ami-" + IMAGE.replace("-", "")[:8]
    api.report("cmp1", sid, vm_state="active", power_state=1, console_tail="boot\nready\n")
    srv = api.server(sid, ALICE)
    assert srv["status"] == "ACTIVE" and srv["OS-EXT-STS:power_state"] == 1
    assert srv["OS-EXT-STS:task_state"] is None
    out = api.ok("POST", f"/v2.1/servers/{sid}/action", ALICE,
                 json={"os-getConsoleOutput": {"length": 2}})
    assert out == {"output": "ready\n"}  # Nova's tail: the empty piece after "\n" counts
    ip = addr["addr"]
    api.fake.floating[port["id"]] = "203.0.113.20"
    found = api.ok("GET", f"/v2.1/stratus/metadata?network_id={net['id']}&fixed_ip={ip}")
    assert found["instance"]["uuid"] == sid
    assert found["instance"]["networks"][0]["floating_ip"] == "203.0.113.20"
    shown = api.ok("GET", "/v2.1/servers/detail", ALICE)["servers"][0]["addresses"]["app-net"]
    assert [(a["addr"], a["OS-EXT-IPS:type"]) for a in shown] == [
        (ip, "fixed"), ("203.0.113.20", "floating")]
    assert api.call("GET", f"/v2.1/stratus/metadata?network_id={net['id']}&fixed_ip=1.2.3.4"
                    ).status_code == 404
    assert api.call("GET", "/v2.1/stratus/compute-hosts/cmp1/servers", ALICE).status_code == 403
    api.ok("PUT", f"/v2.1/stratus/metadata/{sid}/password", json={"password": "blob"})
    assert api.call("PUT", f"/v2.1/stratus/metadata/{sid}/password",
                    json={"password": "again"}).status_code == 409
    assert api.ok("GET", f"/v2.1/servers/{sid}/os-server-password", ALICE) == {
        "password": "blob"}
    # Delete goes through the agent, which reports deleted; the port goes away.
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    assert api.server(sid, ALICE)["OS-EXT-STS:task_state"] == "deleting"
    assert api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"][0]["delete"]
    api.report("cmp1", sid, deleted=True)
    assert api.call("GET", f"/v2.1/servers/{sid}", ALICE).status_code == 404
    assert api.fake.ports == {}
    assert api.ok("GET", "/v2.1/limits", ALICE)["limits"]["absolute"]["totalInstancesUsed"] == 0


@pytest.mark.parametrize("attrs, status, text", [
    ({"imageRef": "22222222-2222-4222-8222-222222222222"}, 400, "Image"),
    ({"flavorRef": "nope"}, 400, "Flavor nope"),
    ({"key_name": "missing"}, 400, "key_name"),
    ({"networks": [{"uuid": "33333333-3333-4333-8333-333333333333"}]}, 400, "Network"),
    ({"networks": [{"uuid": "not-a-uuid"}]}, 400, "UUID"),
    ({"user_data": "***"}, 400, "base64"),
    ({"user_data": "A" * 70000}, 400, "user_data"),
    ({"availability_zone": "nova:cmp1"}, 400, "admin"),
    ({"min_count": 3, "max_count": 2}, 400, "min_count"),
    ({"bogus": 1}, 400, "bogus"),
    ({"networks": "some"}, 400, "auto"),
])
def test_create_validation(api: ComputeApi, attrs: dict[str, Any], status: int,
                           text: str) -> None:
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none", **attrs}})
    assert resp.status_code == status, resp.text
    assert text in err(resp)[1]
    assert api.ok("GET", "/v2.1/servers", ALICE)["servers"] == []


def test_networks_required_from_2_37_and_auto(api: ComputeApi) -> None:
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}}
    resp = api.call("POST", "/v2.1/servers", ALICE, json=body)
    assert resp.status_code == 400 and "networks" in err(resp)[1]
    assert api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        **body["server"], "networks": "auto"}}).status_code == 400
    api.fake.network("only")
    sid = api.boot(networks="auto")["server"]["id"]
    assert list(api.server(sid)["addresses"]) == ["only"]
    api.fake.network("second")
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        **body["server"], "networks": "auto"}})
    assert resp.status_code == 409 and "Multiple possible networks" in err(resp)[1]


def test_a_port_the_network_refuses_leaves_nothing(api: ComputeApi) -> None:
    net = api.fake.network()
    api.boot(networks=[{"uuid": net["id"], "fixed_ip": "192.168.10.50"}])
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm2", "imageRef": IMAGE, "flavorRef": "1",
        "networks": [{"uuid": net["id"], "fixed_ip": "192.168.10.50"}]}})
    assert resp.status_code == 409 and "192.168.10.50" in err(resp)[1]
    assert len(api.ok("GET", "/v2.1/servers", ALICE)["servers"]) == 1
    assert len(api.fake.ports) == 1
    limits = api.ok("GET", "/v2.1/limits", ALICE)["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == 1 and limits["totalRAMUsed"] == 512
    # A network API outage is not the request's fault: ERROR with a fault, no claim kept.
    api.fake.fail_ports = ServiceError("network down", status=503, temporary=True)
    sid = api.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "ERROR" and "network down" in srv["fault"]["message"]
    assert srv["OS-EXT-SRV-ATTR:host"] is None


def test_no_valid_host_and_quota(api: ComputeApi) -> None:
    api.flavor("huge", id="h", vcpus=18, ram=1024, disk=1)
    sid = api.boot(flavorRef="h")["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "ERROR"
    assert srv["fault"]["message"].startswith("No valid host was found. Filter CoreFilter")
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {"instances": 2}})
    api.boot()
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 403 and err(resp)[0] == "overLimit"
    assert "instances" in err(resp)[1]
    quota = api.ok("GET", "/v2.1/os-quota-sets/p-alice/detail")["quota_set"]
    assert quota["instances"] == {"limit": 2, "in_use": 2, "reserved": 0}
    assert api.call("PUT", "/v2.1/os-quota-sets/p-alice", ALICE,
                    json={"quota_set": {"instances": 50}}).status_code == 403
    # Deleting the never-placed server completes in the API and frees its quota.
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    assert api.ok("GET", "/v2.1/limits", ALICE)["limits"]["absolute"][
        "totalInstancesUsed"] == 1


def test_actions_follow_the_state_rules(api: ComputeApi) -> None:
    srv = active(api)
    sid, url = srv["id"], f"/v2.1/servers/{srv['id']}/action"
    resp = api.call("POST", url, ALICE, json={"os-start": None})
    assert resp.status_code == 409 and "vm_state active" in err(resp)[1]
    assert api.call("POST", url, ALICE, json={"os-stop": None}).status_code == 202
    assert api.server(sid)["OS-EXT-STS:task_state"] == "powering-off"
    assert api.call("POST", url, ALICE, json={"pause": None}).status_code == 409
    a = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"][0]
    assert a["desired_power"] == "shutdown"
    api.report("cmp1", sid, vm_state="stopped", power_state=4)
    assert api.server(sid)["status"] == "SHUTOFF"
    assert api.call("POST", url, ALICE, json={"reboot": {"type": "SOFT"}}).status_code == 409
    api.ok("POST", url, ALICE, status=202, json={"os-start": None})
    api.report("cmp1", sid, vm_state="active", power_state=1)
    api.ok("POST", url, ALICE, status=202, json={"reboot": {"type": "HARD"}})
    assert api.server(sid)["status"] == "HARD_REBOOT"
    api.report("cmp1", sid, vm_state="active", power_state=1, reboot_generation=1)
    assert api.server(sid)["status"] == "ACTIVE"
    for action, state, power in (("pause", "paused", 3), ("unpause", "active", 1),
                                 ("suspend", "suspended", 7), ("resume", "active", 1)):
        api.ok("POST", url, ALICE, status=202, json={action: None})
        api.report("cmp1", sid, vm_state=state, power_state=power)
        assert api.server(sid)["OS-EXT-STS:vm_state"] == state
    assert api.call("POST", url, READER, json={"os-stop": None}).status_code == 403
    assert api.call("POST", url, BOB, json={"os-stop": None}).status_code == 404
    assert api.call("POST", url, ALICE, json={"explode": None}).status_code == 400
    resp = api.call("POST", url, ALICE, json={"createImage": {"name": "snap"}})
    assert resp.status_code == 202 and resp.headers["Location"].endswith(
        resp.json()["image_id"])
    image_id = resp.json()["image_id"]
    props = api.fake.images[image_id]
    assert props["instance_uuid"] == sid and props["image_type"] == "snapshot"
    assert props["base_image_ref"] == IMAGE
    a = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"][0]
    assert a["snapshots"] == [{"image_id": image_id, "name": "snap"}]
    api.report("cmp1", sid, snapshots_done=[image_id])
    assert api.server(sid)["OS-EXT-STS:task_state"] is None


def test_create_image_metadata_wins_over_the_properties_stratus_sets(
        api: ComputeApi) -> None:
    """As in Nova: createImage's ``metadata`` overrides the snapshot properties, not the
    image's own fields."""
    sid = active(api)["id"]
    meta = {"image_type": "test", "base_image_ref": "mine", "disk_format": "raw", "k": "v"}
    resp = api.call("POST", f"/v2.1/servers/{sid}/action", ALICE,
                    json={"createImage": {"name": "s8t-snap", "metadata": meta}})
    image = api.fake.images[resp.json()["image_id"]]
    assert (image["image_type"], image["base_image_ref"], image["k"]) == ("test", "mine", "v")
    assert (image["instance_uuid"], image["name"], image["disk_format"],
            image["visibility"]) == (sid, "s8t-snap", "qcow2", "private")


def test_reschedule_then_error_after_max_attempts(api: ComputeApi) -> None:
    api.host("cmp2")
    api.host("cmp3")
    sid = api.boot()["server"]["id"]
    seen = []
    for _ in range(3):
        host = api.server(sid)["OS-EXT-SRV-ATTR:host"]
        assert host not in seen
        seen.append(host)
        api.report(host, sid, reschedule=True, fault={"code": 500, "message": "disk full"})
    srv = api.server(sid)
    assert srv["status"] == "ERROR" and "disk full" in srv["fault"]["message"]
    assert sorted(seen) == ["cmp1", "cmp2", "cmp3"]
    assert api.call("POST", f"/v2.1/stratus/compute-hosts/cmp1/servers/{sid}/report",
                    json={"vm_state": "active"}).status_code == 409


def test_server_groups_and_hints(api: ComputeApi) -> None:
    api.host("cmp2")
    group = api.ok("POST", "/v2.1/os-server-groups", ALICE, json={"server_group": {
        "name": "g", "policies": ["anti-affinity"]}})["server_group"]
    first = api.boot(hints={"group": group["id"]})["server"]["id"]
    second = api.boot(hints={"group": group["id"]})["server"]["id"]
    hosts = {api.server(s)["OS-EXT-SRV-ATTR:host"] for s in (first, second)}
    assert hosts == {"cmp1", "cmp2"}
    third = api.server(api.boot(hints={"group": group["id"]})["server"]["id"])
    assert third["status"] == "ERROR" and "ServerGroupAffinityFilter" in third["fault"][
        "message"]
    members = api.ok("GET", f"/v2.1/os-server-groups/{group['id']}", ALICE)["server_group"]
    assert first in members["members"] and len(members["members"]) == 3
    same = api.server(api.boot(hints={"same_host": first})["server"]["id"])
    assert same["OS-EXT-SRV-ATTR:host"] == api.server(first)["OS-EXT-SRV-ATTR:host"]
    diff = api.server(api.boot(hints={"different_host": [first]})["server"]["id"])
    assert diff["OS-EXT-SRV-ATTR:host"] != api.server(first)["OS-EXT-SRV-ATTR:host"]
    forced = api.boot(ADMIN, availability_zone="nova:cmp2")["server"]["id"]
    assert api.server(forced)["OS-EXT-SRV-ATTR:host"] == "cmp2"
    bad = api.call("POST", "/v2.1/os-server-groups", ALICE, json={"server_group": {
        "name": "g", "policies": ["sometimes"]}})
    assert bad.status_code == 400


def test_list_filters_paging_and_isolation(api: ComputeApi) -> None:
    ids = [api.boot(name=f"web{i}")["server"]["id"] for i in range(3)]
    api.boot(BOB, name="bob1")
    names = [s["name"] for s in api.ok("GET", "/v2.1/servers", ALICE)["servers"]]
    assert sorted(names) == ["web0", "web1", "web2"]
    page = api.ok("GET", "/v2.1/servers/detail?limit=2", ALICE)
    assert len(page["servers"]) == 2 and "marker=" in page["servers_links"][0]["href"]
    assert [s["name"] for s in api.ok("GET", "/v2.1/servers?name=^web1$", ALICE)[
        "servers"]] == ["web1"]
    everyone = api.ok("GET", "/v2.1/servers?all_tenants=1")["servers"]
    assert len(everyone) == 4
    assert len(api.ok("GET", "/v2.1/servers?all_tenants=1&project_id=p-bob")["servers"]) == 1
    for key in ("tenant_id", "project_id"):  # s8t: ignored without all_tenants (Nova)
        assert api.ok("GET", f"/v2.1/servers?{key}=p-bob")["servers"] == []
    assert api.call("GET", "/v2.1/servers?bogus=1", ALICE).status_code == 400
    assert len(api.ok("GET", "/v2.1/servers?status=BUILD", ALICE)["servers"]) == 3
    assert api.call("GET", f"/v2.1/servers/{ids[0]}", BOB).status_code == 404
    api.ok("PUT", f"/v2.1/servers/{ids[0]}", ALICE, json={"server": {"name": "renamed"}})
    api.ok("PUT", f"/v2.1/servers/{ids[0]}/metadata/k", ALICE, json={"meta": {"k": "v"}})
    assert api.ok("GET", f"/v2.1/servers/{ids[0]}/metadata", ALICE) == {"metadata": {"k": "v"}}


def test_admin_views_hypervisors_services_zones(api: ComputeApi) -> None:
    hyp = api.ok("GET", "/v2.1/os-hypervisors/detail")["hypervisors"][0]
    assert hyp["hypervisor_hostname"] == "cmp1" and hyp["state"] == "up"
    assert api.call("GET", "/v2.1/os-hypervisors", ALICE).status_code == 403
    svc = api.ok("GET", "/v2.1/os-services")["services"][0]
    assert svc["binary"] == "nova-compute" and svc["status"] == "enabled"
    api.ok("PUT", "/v2.1/os-services/disable", json={"host": "cmp1", "binary": "nova-compute"})
    srv = api.server(api.boot()["server"]["id"])
    assert srv["status"] == "ERROR" and "ComputeFilter (enabled)" in srv["fault"]["message"]
    zones = api.ok("GET", "/v2.1/os-availability-zone", ALICE)["availabilityZoneInfo"]
    assert isinstance(zones, list)
    stats = api.ok("GET", "/v2.1/os-hypervisors/statistics")["hypervisor_statistics"]
    assert stats["count"] == 1 and stats["vcpus"] == 4


def test_a_users_port_is_taken_and_only_unbound_on_delete(api: ComputeApi) -> None:
    net = api.fake.network("mine")
    port = api.fake.create_port(ALICE, {"network_id": net["id"]})
    sid = api.boot(networks=[{"port": port["id"]}])["server"]["id"]
    taken = api.fake.ports[port["id"]]
    assert taken["device_id"] == sid and taken["binding:host_id"] == "cmp1"
    busy = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "again", "imageRef": IMAGE, "flavorRef": "1",
        "networks": [{"port": port["id"]}]}})
    assert busy.status_code == 409 and "in use" in err(busy)[1]
    api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    api.report("cmp1", sid, deleted=True)
    left = api.fake.ports[port["id"]]
    assert left["device_id"] == "" and left["binding:host_id"] == ""


def test_min_max_count_takes_what_the_quota_allows(api: ComputeApi) -> None:
    api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {"instances": 3}})
    api.boot(name="many", min_count=2, max_count=5)
    names = sorted(s["name"] for s in api.ok("GET", "/v2.1/servers", ALICE)["servers"])
    assert names == ["many-1", "many-2", "many-3"]
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "more", "imageRef": IMAGE, "flavorRef": "1", "networks": "none",
        "min_count": 1, "max_count": 2}})
    assert resp.status_code == 403 and err(resp)[0] == "overLimit"


def test_older_microversions_keep_the_older_shapes(api: ComputeApi) -> None:
    body = {"server": {"name": "old", "imageRef": IMAGE, "flavorRef": "1"}}
    resp = api.call("POST", "/v2.1/servers", ALICE, version="2.1", json=body)
    assert resp.status_code == 202, resp.text  # networks optional before 2.37
    sid = resp.json()["server"]["id"]
    old = api.call("GET", f"/v2.1/servers/{sid}", ADMIN, version="2.1").json()["server"]
    assert old["flavor"]["id"] == "1" and "locked" not in old and "tags" not in old
    assert "OS-EXT-SRV-ATTR:hostname" not in old
    new = api.server(sid)
    assert new["flavor"]["original_name"] == "m1.tiny" and new["locked"] is False
    assert new["OS-EXT-SRV-ATTR:hostname"] == "old" and new["host_status"] == "UP"
    kp = api.call("POST", "/v2.1/os-keypairs", ALICE, version="2.1",
                  json={"keypair": {"name": "k"}})
    assert kp.status_code == 200 and "type" not in kp.json()["keypair"]
    assert api.call("DELETE", "/v2.1/os-keypairs/k", ALICE, version="2.1").status_code == 202
    group = api.call("POST", "/v2.1/os-server-groups", ALICE, version="2.14", json={
        "server_group": {"name": "g", "policies": ["soft-affinity"]}})
    assert group.status_code == 400


def test_a_dead_host_fails_its_builds_and_deletes_complete_in_the_api(api: ComputeApi) -> None:
    from stratus.compute import models as m

    sid = api.boot()["server"]["id"]
    with api.core.db.session() as s:
        host = s.query(m.ComputeHost).one()
        host.heartbeat_at = host.heartbeat_at.replace(year=2000)
        srv = s.get(m.Server, sid)
        assert srv is not None
        srv.updated_at = srv.updated_at.replace(year=2000)
    shown = api.server(sid)
    assert shown["status"] == "ERROR" and "stopped reporting" in shown["fault"]["message"]
    assert api.ok("GET", "/v2.1/os-services")["services"][0]["state"] == "down"
    api.ok("DELETE", f"/v2.1/servers/{sid}", ALICE)
    assert api.call("GET", f"/v2.1/servers/{sid}", ALICE).status_code == 404
    deleted = api.ok("GET", "/v2.1/servers?all_tenants=1&deleted=true")["servers"]
    assert [s["id"] for s in deleted] == [sid]


def test_assignments_long_poll_wakes_on_a_change(api: ComputeApi) -> None:
    import threading

    srv = active(api)
    gen = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["generation"]
    same = api.ok("GET", f"/v2.1/stratus/compute-hosts/cmp1/servers?wait=0.3&since={gen}")
    assert same["generation"] == gen
    got: list[dict[str, Any]] = []
    poll = threading.Thread(target=lambda: got.append(api.ok(
        "GET", f"/v2.1/stratus/compute-hosts/cmp1/servers?wait=30&since={gen}")))
    poll.start()
    api.ok("POST", f"/v2.1/servers/{srv['id']}/action", ALICE, status=202,
           json={"os-stop": None})
    poll.join(timeout=60)
    assert got and got[0]["generation"] > gen
    assert got[0]["servers"][0]["desired_power"] == "shutdown"
    assert api.call("GET", "/v2.1/stratus/compute-hosts/nope/servers").status_code == 404
    assert api.call("GET", "/v2.1/stratus/compute-hosts/cmp1/servers?wait=x").status_code == 400


def test_a_malformed_network_answer_leaves_an_error_not_a_half_made_server(
        api: ComputeApi) -> None:
    net = api.fake.network()
    real = api.fake.create_port

    def broken(token: str, body: dict[str, Any]) -> dict[str, Any]:
        port = real(token, body)
        return {"id": port["id"]}  # no network_id, no fixed_ips

    api.fake.create_port = broken  # type: ignore[method-assign]
    sid = api.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    srv = api.server(sid)
    assert srv["status"] == "ERROR" and "unexpected answer" in srv["fault"]["message"]
    assert srv["OS-EXT-SRV-ATTR:host"] is None
    assert api.fake.ports == {}
    hyp = api.ok("GET", "/v2.1/os-hypervisors/detail")["hypervisors"][0]
    assert hyp["hypervisor_hostname"] == "cmp1"
    with api.core.db.session() as s:
        from stratus.compute import models as m
        assert s.query(m.ComputeHost).one().claimed_ram == 0


def test_metadata_over_its_quota_is_a_403_as_in_nova(api: ComputeApi) -> None:
    too_many = {f"k{i}": "v" for i in range(129)}  # metadata_items: 128
    refused = api.boot(status=403, metadata=too_many)
    assert "metadata_items" in refused["forbidden"]["message"]
    sid = api.boot(metadata={"a": "b"})["server"]["id"]
    for method in ("PUT", "POST"):
        resp = api.call(method, f"/v2.1/servers/{sid}/metadata", token=ALICE,
                            json={"metadata": too_many})
        assert resp.status_code == 403 and "metadata_items" in resp.text, resp.text
    assert api.call("GET", f"/v2.1/servers/{sid}/metadata",
                        token=ALICE).json()["metadata"] == {"a": "b"}  # nothing changed
