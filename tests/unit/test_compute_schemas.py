"""Compute responses against Tempest's own response schemas (tempest.lib.api_schema, the
pinned Tempest of the test extra) at microversions Stratus claims: 2.1, 2.2, 2.47 and the
steps up to 2.96 (the latest) whose shapes change most (test_compute_microversions.py
checks the others at their boundaries). Tempest validates every response it gets the same way, with
``additionalProperties: false`` in most objects, so an extra or missing key here is a
failed Tempest test there.

The compute API runs in-process with the fake image/network APIs of tests/compute_api.py.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

from compute_api import ADMIN, ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit
VERSIONS = ("2.1", "2.2", "2.47", "2.53", "2.57", "2.64", "2.73", "2.75", "2.79", "2.87",
            "2.96")
BASE = "tempest.lib.api_schema.response.compute"
SCHEMA_DIRS = sorted(
    (tuple(int(x) for x in p.name[1:].split("_")), p.name)
    for p in Path(importlib.import_module(BASE).__file__ or "").parent.iterdir()
    if p.is_dir() and p.name.startswith("v2_"))
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb3cpnV/r24G8PYeiTzTHyyyjeqyzOUV"
              "3ZX9Pc5Y5xb test")


def schema(module: str, name: str, version: str) -> dict[str, Any]:
    """Tempest's schema ``name`` of ``module`` for a microversion: the one of the newest
    vX_Y directory at or below it that defines it (as Tempest's clients pick them)."""
    wanted = tuple(int(x) for x in version.split("."))
    for ver, dirname in reversed(SCHEMA_DIRS):
        if ver > wanted:
            continue
        try:
            mod = importlib.import_module(f"{BASE}.{dirname}.{module}")
        except ModuleNotFoundError:
            continue
        if hasattr(mod, name):
            found: dict[str, Any] = getattr(mod, name)
            return found
    raise LookupError(f"no Tempest schema {module}.{name} at {version}")


def check(resp: httpx.Response, module: str, name: str, version: str) -> Any:
    """Assert the response is what Tempest's schema allows (status, body, headers)."""
    sch = schema(module, name, version)
    assert resp.status_code in sch["status_code"], (module, name, resp.status_code,
                                                     resp.text)
    body = resp.json() if resp.content else None
    if sch.get("response_body"):
        try:
            jsonschema.validate(body, sch["response_body"], cls=JSONSCHEMA_VALIDATOR,
                                format_checker=FORMAT_CHECKER)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{module}.{name} at {version}: {exc.message} at "
                        f"{list(exc.absolute_path)}\n{body}")
    else:
        assert not body, (module, name, body)
    if sch.get("response_header"):
        headers = {k.lower(): v for k, v in resp.headers.items()}
        jsonschema.validate(headers, sch["response_header"], cls=JSONSCHEMA_VALIDATOR,
                            format_checker=FORMAT_CHECKER)
    return body


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def active(api: ComputeApi, version: str, **attrs: Any) -> str:
    net = api.fake.network(f"net-{len(api.fake.ports)}")
    body = {"server": {"name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111",
                       "flavorRef": "1", "networks": [{"uuid": net["id"]}], **attrs}}
    resp = api.call("POST", "/v2.1/servers", ALICE, version=version, json=body)
    sid = check(resp, "servers", "create_server_with_admin_pass"
                if "adminPass" in resp.json().get("server", {}) else "create_server",
                version)["server"]["id"]
    srv = api.server(sid)
    api.report(srv["OS-EXT-SRV-ATTR:host"], sid, vm_state="active", power_state=1)
    return str(sid)


def test_versions(api: ComputeApi) -> None:
    body = check(api.call("GET", "/", version=None), "versions", "list_versions", "2.1")
    # Every version's self link resolves to that version's document.
    for doc in body["versions"]:
        href = next(x["href"] for x in doc["links"] if x["rel"] == "self")
        path = httpx.URL(href).path
        resp = api.call("GET", path, version=None)
        shown = check(resp, "versions", "get_one_version", "2.1")["version"]
        assert shown["id"] == doc["id"]
        # Tempest's test_get_version_details: the document's self link is the listed one
        assert [x for x in shown["links"] if x["rel"] == "self"] == [
            x for x in doc["links"] if x["rel"] == "self"]
    assert body["versions"][0]["id"] == "v2.0"
    check(api.call("GET", "/v2.1", version=None), "versions", "get_one_version", "2.1")


@pytest.mark.parametrize("version", VERSIONS)
def test_keypairs(api: ComputeApi, version: str) -> None:
    new = {"keypair": {"name": "gen"}}
    if tuple(map(int, version.split("."))) < (2, 92):  # 2.92: import only
        made = check(api.call("POST", "/v2.1/os-keypairs", ALICE, version=version, json=new),
                     "keypairs", "create_keypair", version)["keypair"]
        assert made["private_key"] and made["user_id"] == "u-alice"
    imported = {"keypair": {"name": "imp", "public_key": PUBLIC_KEY}}
    made = check(api.call("POST", "/v2.1/os-keypairs", ALICE, version=version,
                          json=imported), "keypairs", "create_keypair", version)["keypair"]
    assert "private_key" not in made
    check(api.call("GET", "/v2.1/os-keypairs/imp", ALICE, version=version),
          "keypairs", "get_keypair", version)
    check(api.call("GET", "/v2.1/os-keypairs", ALICE, version=version),
          "keypairs", "list_keypairs", version)
    check(api.call("DELETE", "/v2.1/os-keypairs/imp", ALICE, version=version),
          "keypairs", "delete_keypair", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_flavors(api: ComputeApi, version: str) -> None:
    body = {"flavor": {"name": f"f{version}", "vcpus": 1, "ram": 64, "disk": 1}}
    made = check(api.call("POST", "/v2.1/flavors", version=version, json=body),
                 "flavors", "create_update_get_flavor_details", version)["flavor"]
    check(api.call("GET", f"/v2.1/flavors/{made['id']}", ALICE, version=version),
          "flavors", "create_update_get_flavor_details", version)
    check(api.call("GET", "/v2.1/flavors", ALICE, version=version), "flavors",
          "list_flavors", version)
    check(api.call("GET", "/v2.1/flavors/detail", ALICE, version=version), "flavors",
          "list_flavors_details", version)
    check(api.call("DELETE", f"/v2.1/flavors/{made['id']}", version=version), "flavors",
          "delete_flavor", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_servers(api: ComputeApi, version: str) -> None:
    sid = active(api, version, accessIPv4="1.1.1.1", accessIPv6="::babe:202:202",
                 metadata={"a": "b"})
    for token in (ALICE, ADMIN):
        srv = check(api.call("GET", f"/v2.1/servers/{sid}", token, version=version),
                    "servers", "get_server", version)["server"]
        assert (srv["accessIPv4"], srv["accessIPv6"]) == ("1.1.1.1", "::babe:202:202")
        check(api.call("GET", "/v2.1/servers/detail", token, version=version),
              "servers", "list_servers_detail", version)
    check(api.call("GET", "/v2.1/servers", ALICE, version=version), "servers",
          "list_servers", version)
    upd = {"server": {"name": "renamed", "accessIPv4": "2.2.2.2"}}
    srv = check(api.call("PUT", f"/v2.1/servers/{sid}", ALICE, version=version, json=upd),
                "servers", "update_server", version)["server"]
    assert srv["accessIPv4"] == "2.2.2.2" and srv["accessIPv6"] == "::babe:202:202"
    check(api.call("GET", f"/v2.1/servers/{sid}/metadata", ALICE, version=version),
          "servers", "list_server_metadata", version)
    check(api.call("DELETE", f"/v2.1/servers/{sid}", ALICE, version=version), "servers",
          "delete_server", version)


def test_access_ips_are_checked(api: ComputeApi) -> None:
    body = {"server": {"name": "vm", "imageRef": "11111111-1111-4111-8111-111111111111",
                       "flavorRef": "1", "networks": "none", "accessIPv4": "::1"}}
    resp = api.call("POST", "/v2.1/servers", ALICE, json=body)
    assert resp.status_code == 400 and "accessIPv4" in resp.text


@pytest.mark.parametrize("version", VERSIONS)
def test_server_groups(api: ComputeApi, version: str) -> None:
    body = {"server_group": {"name": "g", "policies": ["affinity"]}}
    if tuple(map(int, version.split("."))) >= (2, 64):  # policy and rules, not policies
        body = {"server_group": {"name": "g", "policy": "anti-affinity",
                                  "rules": {"max_server_per_host": 1}}}
    made = check(api.call("POST", "/v2.1/os-server-groups", ALICE, version=version,
                          json=body), "server_groups", "create_show_server_group",
                 version)["server_group"]
    check(api.call("GET", f"/v2.1/os-server-groups/{made['id']}", ALICE, version=version),
          "server_groups", "create_show_server_group", version)
    check(api.call("GET", "/v2.1/os-server-groups", ALICE, version=version),
          "server_groups", "list_server_groups", version)
    check(api.call("DELETE", f"/v2.1/os-server-groups/{made['id']}", ALICE,
                   version=version), "server_groups", "delete_server_group", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_limits_quotas_and_zones(api: ComputeApi, version: str) -> None:
    check(api.call("GET", "/v2.1/limits", ALICE, version=version), "limits", "get_limit",
          version)
    check(api.call("GET", "/v2.1/os-quota-sets/p-alice", ALICE, version=version),
          "quotas", "get_quota_set", version)
    check(api.call("GET", "/v2.1/os-quota-sets/p-alice/defaults", ALICE, version=version),
          "quotas", "get_quota_set", version)
    check(api.call("GET", "/v2.1/os-quota-sets/p-alice/detail", ADMIN, version=version),
          "quotas", "get_quota_set_details", version)
    upd = {"quota_set": {"cores": 30}}
    check(api.call("PUT", "/v2.1/os-quota-sets/p-alice", ADMIN, version=version, json=upd),
          "quotas", "update_quota_set", version)
    check(api.call("DELETE", "/v2.1/os-quota-sets/p-alice", ADMIN, version=version),
          "quotas", "delete_quota", version)
    check(api.call("GET", "/v2.1/os-availability-zone", ALICE, version=version),
          "availability_zone", "list_availability_zone_list", version)
    detail = check(api.call("GET", "/v2.1/os-availability-zone/detail", ADMIN,
                            version=version), "availability_zone",
                   "list_availability_zone_list_detail", version)["availabilityZoneInfo"]
    # s8t: Nova's internal zone holds the controller's scheduler, only in the detail
    zones = {z["zoneName"]: z["hosts"] for z in detail}
    assert set(zones) == {"nova", "internal"}
    assert list(zones["internal"][socket.gethostname()]) == ["nova-scheduler"]
    plain = api.ok("GET", "/v2.1/os-availability-zone", ALICE, version=version)
    assert [z["zoneName"] for z in plain["availabilityZoneInfo"]] == ["nova"]


@pytest.mark.parametrize("version", ("2.1", "2.35"))
def test_security_group_proxy(api: ComputeApi, version: str) -> None:
    body = {"security_group": {"name": "web", "description": "web servers"}}
    made = check(api.call("POST", "/v2.1/os-security-groups", ALICE, version=version,
                          json=body), "security_groups", "create_security_group",
                 version)["security_group"]
    rules = [{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"},
             {"ip_protocol": "icmp", "from_port": -1, "to_port": -1},
             {"ip_protocol": "udp", "from_port": 53, "to_port": 53, "group_id": made["id"]}]
    for rule in rules:
        rule_body = {"security_group_rule": {"parent_group_id": made["id"], **rule}}
        check(api.call("POST", "/v2.1/os-security-group-rules", ALICE, version=version,
                       json=rule_body), "security_groups", "create_security_group_rule",
              version)
    shown = check(api.call("GET", f"/v2.1/os-security-groups/{made['id']}", ALICE,
                           version=version), "security_groups", "get_security_group",
                  version)["security_group"]
    assert len(shown["rules"]) == 3
    check(api.call("GET", "/v2.1/os-security-groups", ALICE, version=version),
          "security_groups", "list_security_groups", version)
    upd = {"security_group": {"name": "web2", "description": "renamed"}}
    check(api.call("PUT", f"/v2.1/os-security-groups/{made['id']}", ALICE, version=version,
                   json=upd), "security_groups", "update_security_group", version)
    check(api.call("DELETE", f"/v2.1/os-security-group-rules/{shown['rules'][0]['id']}",
                   ALICE, version=version), "security_groups", "delete_security_group_rule",
          version)
    check(api.call("DELETE", f"/v2.1/os-security-groups/{made['id']}", ALICE,
                   version=version), "security_groups", "delete_security_group", version)
    sid = active(api, version)
    check(api.call("GET", f"/v2.1/servers/{sid}/os-security-groups", ALICE, version=version),
          "security_groups", "list_security_groups", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_volume_attachments(api: ComputeApi, version: str) -> None:
    from test_compute_volumes_api import VOL, FakeVolumes

    api.fake.volumes = FakeVolumes()  # type: ignore[attr-defined]
    api.fake.volumes.volume(VOL)
    sid = active(api, version)
    path = f"/v2.1/servers/{sid}/os-volume_attachments"
    body = {"volumeAttachment": {"volumeId": VOL}}
    check(api.call("POST", path, ALICE, version=version, json=body), "servers",
          "attach_volume", version)
    check(api.call("GET", path, ALICE, version=version), "servers",
          "list_volume_attachments", version)
    check(api.call("GET", f"{path}/{VOL}", ALICE, version=version), "servers",
          "show_volume_attachment", version)
    for token in (ALICE, ADMIN):
        check(api.call("GET", f"/v2.1/servers/{sid}", token, version=version), "servers",
              "get_server", version)
    check(api.call("DELETE", f"{path}/{VOL}", ALICE, version=version), "servers",
          "detach_volume", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_admin_views_and_flavor_extras(api: ComputeApi, version: str) -> None:
    sid = active(api, version)
    check(api.call("GET", "/v2.1/os-hypervisors", version=version), "hypervisors",
          "list_search_hypervisors", version)
    if tuple(map(int, version.split("."))) < (2, 88):
        # Tempest 47's hypervisor schemas stop at 2.53 and still require what 2.88 took
        # away; test_compute_mv_2_80.py checks the 2.88 shape
        check(api.call("GET", "/v2.1/os-hypervisors/detail", version=version), "hypervisors",
              "list_hypervisors_detail", version)
        check(api.call("GET", "/v2.1/os-hypervisors/statistics", version=version),
              "hypervisors", "get_hypervisor_statistics", version)
    services = api.call("GET", "/v2.1/os-services", version=version)
    rows = services.json()["services"]
    jsonschema.validate({"services": rows},
                        schema("services", "list_services", version)["response_body"],
                        cls=JSONSCHEMA_VALIDATOR, format_checker=FORMAT_CHECKER)
    body = {"flavor": {"name": "private", "vcpus": 1, "ram": 64, "disk": 1,
                       "os-flavor-access:is_public": False}}
    fid = api.ok("POST", "/v2.1/flavors", version=version, json=body)["flavor"]["id"]
    add = {"addTenantAccess": {"tenant": "p-alice"}}
    check(api.call("POST", f"/v2.1/flavors/{fid}/action", version=version, json=add),
          "flavors_access", "add_remove_list_flavor_access", version)
    check(api.call("GET", f"/v2.1/flavors/{fid}/os-flavor-access", version=version),
          "flavors_access", "add_remove_list_flavor_access", version)
    specs = {"extra_specs": {"hw:cpu_policy": "shared"}}
    check(api.call("POST", f"/v2.1/flavors/{fid}/os-extra_specs", version=version,
                   json=specs), "flavors_extra_specs", "set_get_flavor_extra_specs", version)
    check(api.call("GET", f"/v2.1/flavors/{fid}/os-extra_specs", version=version),
          "flavors_extra_specs", "set_get_flavor_extra_specs", version)
    check(api.call("GET", f"/v2.1/flavors/{fid}/os-extra_specs/hw:cpu_policy",
                   version=version), "flavors_extra_specs",
          "set_get_flavor_extra_specs_key", version)
    check(api.call("DELETE", f"/v2.1/flavors/{fid}/os-extra_specs/hw:cpu_policy",
                   version=version), "flavors_extra_specs", "unset_flavor_extra_specs",
          version)
    check(api.call("GET", f"/v2.1/servers/{sid}/os-interface", ALICE, version=version),
          "interfaces", "list_interfaces", version)
    check(api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, version=version,
                   json={"os-getConsoleOutput": {"length": 5}}), "servers",
          "get_console_output", version)
    check(api.call("POST", f"/v2.1/servers/{sid}/action", ALICE, version=version,
                   json={"reboot": {"type": "SOFT"}}), "servers",
          "server_actions_common_schema", version)


def test_hosts_usage_and_diagnostics(api: ComputeApi) -> None:
    version = "2.1"
    sid = active(api, version)
    gone = active(api, version)
    api.ok("DELETE", f"/v2.1/servers/{gone}", ALICE, status=204)
    api.report("cmp1", gone, deleted=True)
    hosts = check(api.call("GET", "/v2.1/os-hosts", version=version), "hosts", "list_hosts",
                  version)["hosts"]
    assert hosts == [{"host_name": "cmp1", "service": "compute", "zone": "nova"},
                     {"host_name": socket.gethostname(), "service": "scheduler",
                      "zone": "internal"}]
    rows = check(api.call("GET", "/v2.1/os-hosts/cmp1", version=version), "hosts",
                 "get_host_detail", version)["host"]
    assert [r["resource"]["project"] for r in rows] == [
        "(total)", "(used_now)", "(used_max)", "p-alice"]
    assert rows[3]["resource"]["cpu"] == 1 and rows[3]["resource"]["memory_mb"] == 512
    assert api.call("GET", "/v2.1/os-hosts", ALICE, version=version).status_code == 403
    assert api.call("GET", "/v2.1/os-hosts", version="2.43").status_code == 404
    assert api.call("GET", "/v2.1/os-hosts/nope", version=version).status_code == 404
    window = "start=2020-01-01T00:00:00.000000&end=2099-01-01T00:00:00"
    listed = check(api.call("GET", f"/v2.1/os-simple-tenant-usage?{window}&detailed=1",
                            version=version), "tenant_usages", "list_tenant_usage",
                   version)["tenant_usages"]
    assert [u["tenant_id"] for u in listed] == ["p-alice"]
    states = {u["instance_id"]: u["state"] for u in listed[0]["server_usages"]}
    assert states == {sid: "active", gone: "terminated"}
    one = check(api.call("GET", f"/v2.1/os-simple-tenant-usage/p-alice?{window}", ALICE,
                         version=version), "tenant_usages", "get_tenant_usage",
                version)["tenant_usage"]
    assert len(one["server_usages"]) == 2 and one["total_hours"] >= 0
    assert api.call("GET", f"/v2.1/os-simple-tenant-usage/p-admin?{window}", ALICE,
                    version=version).status_code == 403
    assert api.call("GET", "/v2.1/os-simple-tenant-usage?start=yesterday",
                    version=version).status_code == 400
    # Tempest's negative cases: an empty project id is 404; start after end is 400
    empty = api.call("GET", f"/v2.1/os-simple-tenant-usage/?{window}", version=version)
    assert empty.status_code == 404, empty.text
    backwards = "start=2099-01-01T00:00:00.000000&end=2020-01-01T00:00:00.000000"
    for path in ("/v2.1/os-simple-tenant-usage", "/v2.1/os-simple-tenant-usage/p-alice"):
        resp = api.call("GET", f"{path}?{backwards}", version=version)
        assert resp.status_code == 400 and "start time" in resp.text, resp.text
    diag = check(api.call("GET", f"/v2.1/servers/{sid}/diagnostics", version=version),
                 "servers", "show_server_diagnostics", version)
    assert diag["state"] == "running" and diag["num_cpus"] == 1 and diag["num_nics"] == 1
    assert api.call("GET", f"/v2.1/servers/{sid}/diagnostics", ALICE,
                    version=version).status_code == 403


def test_add_and_remove_fixed_ip(api: ComputeApi) -> None:
    version = "2.1"
    sid = active(api, version)
    srv = api.server(sid)
    (net_name, entries), = srv["addresses"].items()
    first = entries[0]["addr"]
    net_id = next(n["id"] for n in api.fake.networks.values() if n["name"] == net_name)
    act = f"/v2.1/servers/{sid}/action"
    check(api.call("POST", act, ALICE, version=version,
                   json={"addFixedIp": {"networkId": net_id}}), "servers",
          "server_actions_common_schema", version)
    listed = check(api.call("GET", f"/v2.1/servers/{sid}/ips", ALICE, version=version),
                   "servers", "list_addresses", version)["addresses"][net_name]
    added = {a["addr"] for a in listed} - {first}
    assert len(listed) == 2 and len(added) == 1
    check(api.call("GET", f"/v2.1/servers/{sid}/ips/{net_name}", ALICE, version=version),
          "servers", "list_addresses_by_network", version)
    port = next(iter(api.fake.ports.values()))
    assert {ip["ip_address"] for ip in port["fixed_ips"]} == {first, *added}
    check(api.call("GET", f"/v2.1/servers/{sid}/os-interface/{port['id']}", ALICE,
                   version=version), "interfaces", "get_create_interfaces", version)
    resp = api.call("POST", act, ALICE, version=version,
                    json={"removeFixedIp": {"address": added.pop()}})
    assert resp.status_code == 202
    assert [a["addr"] for a in api.server(sid)["addresses"][net_name]] == [first]
    for body, status in (({"removeFixedIp": {"address": "10.9.9.9"}}, 400),
                         ({"addFixedIp": {"networkId": "nope"}}, 400),
                         ({"addFixedIp": {"network": net_id}}, 400)):
        assert api.call("POST", act, ALICE, version=version, json=body).status_code == status
    assert api.call("POST", act, ALICE, version="2.44",
                    json={"addFixedIp": {"networkId": net_id}}).status_code == 404
    assert len(api.fake.ports[port["id"]]["fixed_ips"]) == 1


@pytest.mark.parametrize("version", ["2.1", "2.11", "2.53"])
def test_the_controllers_scheduler_is_listed_by_os_services_and_os_hosts(
        api: ComputeApi, version: str) -> None:
    """Nova lists every service's host: the compute hosts and the controller's scheduler
    (zone ``internal``); both APIs show the same scheduler, which cannot be changed."""
    me = socket.gethostname()
    services = check(api.call("GET", "/v2.1/os-services", version=version), "services",
                     "list_services", version)["services"]
    assert [(s["binary"], s["host"], s["zone"]) for s in services] == [
        ("nova-compute", "cmp1", "nova"), ("nova-scheduler", me, "internal")]
    sched = services[1]
    assert (sched["state"], sched["status"]) == ("up", "enabled")
    assert sched["id"] != services[0]["id"]
    only = api.ok("GET", "/v2.1/os-services?binary=nova-scheduler", version=version)
    assert only["services"] == [sched | {"updated_at": only["services"][0]["updated_at"]}]
    hosts = check(api.call("GET", "/v2.1/os-hosts?zone=internal", version="2.1"), "hosts",
                  "list_hosts", "2.1")["hosts"]
    assert hosts == [{"host_name": me, "service": "scheduler", "zone": "internal"}]
    if version >= "2.53":
        refused = api.call("PUT", f"/v2.1/os-services/{sched['id']}", version=version,
                           json={"status": "disabled"})
        assert refused.status_code == 400 and "nova-scheduler" in refused.text
    else:
        refused = api.call("PUT", "/v2.1/os-services/disable", version=version,
                           json={"host": me, "binary": "nova-scheduler"})
        assert refused.status_code == 400


@pytest.mark.parametrize("action", ["os-migrateLive", "shelve", "rescue"])
def test_nova_actions_not_built_find_the_server_first(api: ComputeApi, action: str) -> None:
    """Tempest's test_migrate_non_existent_server: an unknown server is 404 before the
    action is refused; a real one gets the 400 naming what is supported."""
    missing = api.call("POST", "/v2.1/servers/00000000-0000-4000-8000-000000000000/action",
                       json={action: None})
    assert missing.status_code == 404, missing.text
    sid = active(api, "2.1")
    refused = api.call("POST", f"/v2.1/servers/{sid}/action", json={action: None})
    assert refused.status_code == 400 and "has not built" in refused.text
    bogus = api.call("POST", "/v2.1/servers/00000000-0000-4000-8000-000000000000/action",
                     json={"explode": None})
    assert bogus.status_code == 400
