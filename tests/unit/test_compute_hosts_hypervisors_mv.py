"""os-hypervisors' routes before 2.53 ({pattern}/search, {pattern}/servers) and until 2.87
({id}/uptime), os-hosts' actions (PUT, reboot/startup/shutdown; until 2.42) and
os-quota-class-sets, against Tempest's own response schemas at the versions where the
routes exist, and Nova's 404 after (the in-process API of tests/compute_api.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_compute_schemas import active, check

from compute_api import ADMIN, ALICE, ComputeApi, in_process

pytestmark = pytest.mark.unit
H = "/v2.1/os-hypervisors"


def message(resp: httpx.Response) -> str:
    """The message of a Nova error body (its one key names the fault)."""
    (fault,) = resp.json().values()
    return str(fault["message"])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


@pytest.mark.parametrize("version", ("2.1", "2.28", "2.33", "2.52"))
def test_hypervisor_search_and_servers_before_253(api: ComputeApi, version: str) -> None:
    body = check(api.call("GET", f"{H}/cmp/search", version=version), "hypervisors",
                 "list_search_hypervisors", version)
    assert [h["hypervisor_hostname"] for h in body["hypervisors"]] == ["cmp1"]
    # no servers yet: no servers key (Nova's old form)
    body = check(api.call("GET", f"{H}/cmp1/servers", version=version), "hypervisors",
                 "get_hypervisors_servers", version)
    assert "servers" not in body["hypervisors"][0]
    sid = active(api, version)
    body = check(api.call("GET", f"{H}/cmp1/servers", version=version), "hypervisors",
                 "get_hypervisors_servers", version)
    assert [s["uuid"] for s in body["hypervisors"][0]["servers"]] == [sid]
    for path in (f"{H}/nothere/search", f"{H}/nothere/servers"):
        assert api.call("GET", path, version=version).status_code == 404
        assert api.call("GET", path.replace("nothere", "cmp"), ALICE,
                        version=version).status_code == 403


@pytest.mark.parametrize("version", ("2.53", "2.87", "2.96"))
def test_hypervisor_search_and_servers_gone_from_253(api: ComputeApi, version: str) -> None:
    for path in (f"{H}/cmp/search", f"{H}/cmp1/servers"):
        resp = api.call("GET", path, version=version)
        assert resp.status_code == 404, resp.text
        assert "2.53" in resp.json()["itemNotFound"]["message"]


@pytest.mark.parametrize("version", ("2.1", "2.52", "2.53", "2.87"))
def test_hypervisor_uptime_until_287(api: ComputeApi, version: str) -> None:
    hyp = api.ok("GET", H, version=version)["hypervisors"][0]
    resp = api.call("GET", f"{H}/{hyp['id']}/uptime", version=version)
    # the agent reports no host uptime: Nova's answer for a driver without it
    assert resp.status_code == 501, resp.text
    assert "uptime" in message(resp) and "notImplemented" in resp.json()  # Nova's key
    assert api.call("GET", f"{H}/999/uptime", version=version).status_code == 404
    assert api.call("GET", f"{H}/{hyp['id']}/uptime", ALICE,
                    version=version).status_code == 403
    new = api.ok("GET", H, version="2.88")["hypervisors"][0]
    assert api.call("GET", f"{H}/{new['id']}/uptime", version="2.88").status_code == 404


UPTIME = " 06:40:01 up 36 min,  0 users,  load average: 0.00, 0.01, 0.05"


@pytest.mark.parametrize("version", ("2.1", "2.52", "2.53", "2.87"))
def test_hypervisor_uptime_once_the_agent_reports_it(api: ComputeApi, version: str
                                                         ) -> None:
    api.host("cmp1", uptime=UPTIME)
    hyp = api.ok("GET", H, version=version)["hypervisors"][0]
    body = check(api.call("GET", f"{H}/{hyp['id']}/uptime", version=version), "hypervisors",
                 "get_hypervisor_uptime", version)
    assert body["hypervisor"] == {"id": hyp["id"], "hypervisor_hostname": "cmp1",
                                  "state": "up", "status": "enabled", "uptime": UPTIME}
    # a heartbeat without it (an older agent) keeps the last one reported
    api.host("cmp1")
    assert api.ok("GET", f"{H}/{hyp['id']}/uptime", version=version)["hypervisor"][
        "uptime"] == UPTIME


def test_hypervisor_uptime_field_from_288(api: ComputeApi) -> None:
    """Nova's 2.88 show has ``uptime`` (Tempest 47 has no 2.88 hypervisor schema)."""
    new = api.ok("GET", H, version="2.88")["hypervisors"][0]
    show = f"{H}/{new['id']}"
    assert api.ok("GET", show, version="2.88")["hypervisor"]["uptime"] is None  # not yet
    api.host("cmp1", uptime=UPTIME)
    assert api.ok("GET", show, version="2.88")["hypervisor"]["uptime"] == UPTIME
    listed = api.ok("GET", f"{H}/detail", version="2.88")["hypervisors"]
    assert [h["uptime"] for h in listed] == [UPTIME]
    resp = api.call("PUT", "/v2.1/stratus/compute-hosts/cmp1",
                    json={"host": {"uptime": "x" * 256}})
    assert resp.status_code == 400, resp.text


def service_status(api: ComputeApi) -> str:
    row = api.ok("GET", "/v2.1/os-services?host=cmp1")["services"][0]
    return str(row["status"])


@pytest.mark.parametrize("version", ("2.1", "2.42"))
def test_update_host(api: ComputeApi, version: str) -> None:
    put = "/v2.1/os-hosts/cmp1"
    body = check(api.call("PUT", put, version=version, json={"status": "disable"}),
                 "hosts", "update_host", version)
    assert body == {"host": "cmp1", "status": "disabled"}
    assert service_status(api) == "disabled"
    body = check(api.call("PUT", put, version=version, json={"status": "Enable"}),
                 "hosts", "update_host", version)
    assert body["status"] == "enabled" and service_status(api) == "enabled"
    # maintenance mode: the libvirt driver has none (501) and nothing changes
    resp = api.call("PUT", put, version=version,
                    json={"status": "disable", "maintenance_mode": "enable"})
    assert resp.status_code == 501, resp.text
    assert service_status(api) == "enabled"
    for bad in ({}, {"status": "invalid"}, {"status": "enable", "maintenance_mode": "x"},
                {"status": "enable", "extra": 1}, {"status": 1}):
        resp = api.call("PUT", put, version=version, json=bad)
        assert resp.status_code == 400, (bad, resp.text)
    assert service_status(api) == "enabled"
    both = {"status": "enable", "maintenance_mode": "enable"}
    assert api.call("PUT", "/v2.1/os-hosts/nothere", version=version,
                    json=both).status_code == 404
    assert api.call("PUT", put, ALICE, version=version, json=both).status_code == 403


@pytest.mark.parametrize("version", ("2.1", "2.42"))
@pytest.mark.parametrize("action", ("reboot", "startup", "shutdown"))
def test_host_power_actions(api: ComputeApi, version: str, action: str) -> None:
    resp = api.call("GET", f"/v2.1/os-hosts/cmp1/{action}", version=version)
    assert resp.status_code == 501, resp.text
    assert action in message(resp)
    assert api.call("GET", f"/v2.1/os-hosts/nothere/{action}",
                    version=version).status_code == 404
    assert api.call("GET", f"/v2.1/os-hosts/cmp1/{action}", ALICE,
                    version=version).status_code == 403


@pytest.mark.parametrize("version", ("2.43", "2.96"))
def test_host_actions_gone_from_243(api: ComputeApi, version: str) -> None:
    assert api.call("PUT", "/v2.1/os-hosts/cmp1", version=version,
                    json={"status": "enable"}).status_code == 404
    for action in ("reboot", "startup", "shutdown"):
        assert api.call("GET", f"/v2.1/os-hosts/cmp1/{action}",
                        version=version).status_code == 404


QC = "/v2.1/os-quota-class-sets/default"


@pytest.mark.parametrize("version", ("2.1", "2.49", "2.50", "2.56", "2.57", "2.96"))
def test_quota_class_set_shapes(api: ComputeApi, version: str) -> None:
    body = check(api.call("GET", QC, version=version), "quota_classes",
                 "get_quota_class_set", version)["quota_class_set"]
    v = tuple(int(x) for x in version.split("."))
    assert body["id"] == "default"
    assert ("server_groups" in body) == (v >= (2, 50))
    assert ("floating_ips" in body) == (v < (2, 50))
    assert ("injected_files" in body) == (v < (2, 57))
    change = {"cores": 7}
    if v < (2, 50):
        change["floating_ips"] = 3  # kept and shown back, not enforced (as Nova)
    else:
        change["server_groups"] = 4
    body = check(api.call("PUT", QC, version=version, json={"quota_class_set": change}),
                 "quota_classes", "update_quota_class_set", version)["quota_class_set"]
    assert body["cores"] == 7 and "id" not in body
    assert body["server_groups" if v >= (2, 50) else "floating_ips"] == change[
        "server_groups" if v >= (2, 50) else "floating_ips"]
    # keys a version does not have are refused
    gone = "floating_ips" if v >= (2, 50) else "nothing"
    resp = api.call("PUT", QC, version=version, json={"quota_class_set": {gone: 1}})
    assert resp.status_code == 400, resp.text
    if v >= (2, 57):
        resp = api.call("PUT", QC, version=version,
                        json={"quota_class_set": {"injected_files": 1}})
        assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("version", ("2.1", "2.50", "2.57"))
def test_update_every_default_quota(api: ComputeApi, version: str) -> None:
    """Tempest's test_update_default_quotas: every value of the default class up by 100,
    all of them answered back and shown, then restored."""
    shown = api.ok("GET", QC, version=version)["quota_class_set"]
    assert shown.pop("id") == "default"
    up = {k: val + 100 for k, val in shown.items()}
    body = check(api.call("PUT", QC, version=version, json={"quota_class_set": up}),
                 "quota_classes", "update_quota_class_set", version)["quota_class_set"]
    assert body == up
    again = api.ok("GET", QC, version=version)["quota_class_set"]
    assert again == {"id": "default", **up}
    api.ok("PUT", QC, version=version, json={"quota_class_set": shown})
    assert api.ok("GET", QC, version=version)["quota_class_set"] == {"id": "default", **shown}


def test_default_class_is_every_projects_default(api: ComputeApi) -> None:
    before = api.ok("GET", "/v2.1/os-quota-sets/p-alice", ALICE)["quota_set"]
    api.ok("PUT", "/v2.1/os-quota-sets/p-own", json={"quota_set": {"instances": 2}})
    api.ok("PUT", QC, json={"quota_class_set": {"instances": 1, "ram": -1}})
    # a project without its own quota gets the new defaults (and the defaults route too)
    after = api.ok("GET", "/v2.1/os-quota-sets/p-alice", ALICE)["quota_set"]
    assert after["instances"] == 1 and after["ram"] == -1
    assert after["cores"] == before["cores"]
    assert api.ok("GET", "/v2.1/os-quota-sets/p-alice/defaults")["quota_set"][
        "instances"] == 1
    # a project's own override stands
    assert api.ok("GET", "/v2.1/os-quota-sets/p-own")["quota_set"]["instances"] == 2
    # and the new default is enforced: a second server is over the quota
    api.boot()
    resp = api.call("POST", "/v2.1/servers", ALICE, json={"server": {
        "name": "vm2", "imageRef": "11111111-1111-4111-8111-111111111111",
        "flavorRef": "1", "networks": "none"}})
    assert resp.status_code == 403 and "instances" in message(resp), resp.text
    # another class is kept apart and changes nothing for projects
    api.ok("PUT", "/v2.1/os-quota-class-sets/gold", json={"quota_class_set": {"cores": 99}})
    assert api.ok("GET", "/v2.1/os-quota-class-sets/gold")["quota_class_set"]["cores"] == 99
    assert api.ok("GET", QC)["quota_class_set"]["cores"] == before["cores"]


def test_quota_class_bad_input_and_policy(api: ComputeApi) -> None:
    shown = api.ok("GET", QC)["quota_class_set"]
    for bad in ({"cores": -2}, {"cores": "many"}, {"cores": 1.5}, {"nope": 1}):
        resp = api.call("PUT", QC, json={"quota_class_set": bad})
        assert resp.status_code == 400, (bad, resp.text)
    for body in ({}, {"quota_class_set": []}, []):
        assert api.call("PUT", QC, json=body).status_code == 400
    # nothing half-made: a bad value among good ones changes none of them
    resp = api.call("PUT", QC, json={"quota_class_set": {"instances": 3, "cores": "x"}})
    assert resp.status_code == 400
    assert api.ok("GET", QC)["quota_class_set"] == shown
    assert api.call("GET", QC, ALICE).status_code == 403
    assert api.call("PUT", QC, ALICE,
                    json={"quota_class_set": {"cores": 1}}).status_code == 403
    assert api.call("PUT", "/v2.1/os-quota-class-sets/" + "x" * 256, ADMIN,
                    json={"quota_class_set": {"cores": 1}}).status_code == 400
