"""Security groups of a running server: addSecurityGroup / removeSecurityGroup actions and
GET /servers/{id}/os-security-groups, against the fake network API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ALICE, BOB, READER, ComputeApi, in_process
from stratus.common.clients import ServiceError

pytestmark = pytest.mark.unit
SSH = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
       "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": None}
EGRESS = {"direction": "egress", "ethertype": "IPv4", "protocol": None,
          "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
          "remote_group_id": None}
ICMP = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
        "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
        "remote_group_id": None}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        client.flavor(id="1")
        client.host("cmp1")
        yield client


def err(resp: Any) -> tuple[str, str]:
    key, value = next(iter(resp.json().items()))
    return key, value["message"]


def act(api: ComputeApi, sid: str, name: str, group: Any, token: str = ALICE) -> Any:
    return api.call("POST", f"/v2.1/servers/{sid}/action", token, json={name: group})


def groups_of(api: ComputeApi, sid: str, token: str = ALICE) -> list[str]:
    # Nova leaves the key out for a server in no group
    return [g["name"] for g in api.server(sid, token).get("security_groups", [])]


def test_add_and_remove_change_every_port_and_the_views(api: ComputeApi) -> None:
    net1, net2 = api.fake.network("n1"), api.fake.network("n2")
    web = api.fake.security_group("web", rules=[SSH, EGRESS, ICMP])
    sid = api.boot(networks=[{"uuid": net1["id"]}, {"uuid": net2["id"]}])["server"]["id"]
    default = "sg-default-p-alice"
    assert groups_of(api, sid) == ["default"]
    ports = list(api.fake.ports.values())
    assert len(ports) == 2

    resp = act(api, sid, "addSecurityGroup", {"name": "web"})
    assert resp.status_code == 202, resp.text
    # The fake network API gives ports made without a group no group at all; the API reads
    # the port's groups, so "default" stays only where the port had it.
    assert all(p["security_groups"][-1] == web["id"] for p in ports)
    assert groups_of(api, sid) == ["default", "web"]
    doc = api.ok("GET", "/v2.1/stratus/compute-hosts/cmp1/servers")["servers"][0][
        "metadata_document"]
    assert doc["security_groups"] == ["default", "web"]

    # Adding it again changes nothing.
    before = [list(p["security_groups"]) for p in ports]
    assert act(api, sid, "addSecurityGroup", {"name": web["id"]}).status_code == 202
    assert [p["security_groups"] for p in ports] == before
    assert groups_of(api, sid) == ["default", "web"]

    # os-security-groups reads the groups of the ports: Nova's shape, ingress rules only.
    api.fake.update_port(None, ports[0]["id"], {"security_groups": [default, web["id"]]})
    shown = api.ok("GET", f"/v2.1/servers/{sid}/os-security-groups", ALICE)["security_groups"]
    by_name = {g["name"]: g for g in shown}
    assert sorted(by_name) == ["default", "web"]
    rules = by_name["web"]["rules"]
    assert by_name["web"]["tenant_id"] == "p-alice" and len(rules) == 2
    ssh = next(r for r in rules if r["ip_protocol"] == "tcp")
    assert (ssh["from_port"], ssh["to_port"], ssh["ip_range"], ssh["group"]) == (
        22, 22, {"cidr": "10.0.0.0/8"}, {})
    assert ssh["parent_group_id"] == web["id"]
    icmp = next(r for r in rules if r["ip_protocol"] == "icmp")
    assert (icmp["from_port"], icmp["to_port"], icmp["ip_range"]) == (
        -1, -1, {"cidr": "0.0.0.0/0"})

    resp = act(api, sid, "removeSecurityGroup", {"name": "web"})
    assert resp.status_code == 202, resp.text
    assert all(web["id"] not in p["security_groups"] for p in ports)
    assert ports[0]["security_groups"] == [default]
    assert groups_of(api, sid) == ["default"]
    # Removing a group the server does not have: 404 as Nova.
    resp = act(api, sid, "removeSecurityGroup", {"name": "web"})
    assert resp.status_code == 404
    assert err(resp) == ("itemNotFound",
                         f"Security group web not associated with the instance {sid}")


def test_group_lookup_errors(api: ComputeApi) -> None:
    net = api.fake.network("n1")
    sid = api.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    port = next(iter(api.fake.ports.values()))
    resp = act(api, sid, "addSecurityGroup", {"name": "nope"})
    assert resp.status_code == 404 and err(resp)[0] == "itemNotFound"
    assert "nope" in err(resp)[1]
    one = api.fake.security_group("dup")
    api.fake.security_group("dup")
    resp = act(api, sid, "addSecurityGroup", {"name": "dup"})
    assert resp.status_code == 409 and err(resp)[0] == "conflictingRequest"
    assert "Multiple" in err(resp)[1]
    assert port["security_groups"] == []
    # The id of one of them is unambiguous.
    assert act(api, sid, "addSecurityGroup", {"name": one["id"]}).status_code == 202
    assert port["security_groups"] == [one["id"]]
    # Another project's group is not visible to the caller.
    theirs = api.fake.security_group("theirs", project="p-bob")
    for ref in ("theirs", theirs["id"]):
        assert act(api, sid, "addSecurityGroup", {"name": ref}).status_code == 404
    # Another project's server is not found; a reader may not change it.
    assert act(api, sid, "addSecurityGroup", {"name": "dup"}, BOB).status_code == 404
    assert act(api, sid, "addSecurityGroup", {"name": one["id"]}, READER).status_code == 403
    assert port["security_groups"] == [one["id"]]
    # The network API down: 503, nothing changed.
    api.fake.fail_groups = ServiceError("down", status=503, temporary=True)
    resp = act(api, sid, "removeSecurityGroup", {"name": "dup"})
    assert resp.status_code == 503 and port["security_groups"] == [one["id"]]


@pytest.mark.parametrize("body", [None, {}, {"name": ""}, {"name": " "}, {"name": 7},
                                  {"name": "web", "extra": 1}, "web"])
def test_bad_bodies_are_400(api: ComputeApi, body: Any) -> None:
    net = api.fake.network("n1")
    sid = api.boot(networks=[{"uuid": net["id"]}])["server"]["id"]
    for action in ("addSecurityGroup", "removeSecurityGroup"):
        resp = act(api, sid, action, body)
        assert resp.status_code == 400, resp.text
        assert err(resp)[0] == "badRequest" and "name" in err(resp)[1]


def test_a_server_without_ports_has_no_groups(api: ComputeApi) -> None:
    api.fake.security_group("web")
    sid = api.boot()["server"]["id"]
    resp = act(api, sid, "addSecurityGroup", {"name": "web"})
    assert resp.status_code == 404 and "no ports" in err(resp)[1]
    assert api.ok("GET", f"/v2.1/servers/{sid}/os-security-groups", ALICE) == {
        "security_groups": []}
    assert groups_of(api, sid) == []
    assert api.call("GET", f"/v2.1/servers/{sid}/os-security-groups", BOB).status_code == 404


def test_a_refused_port_update_puts_the_changed_ports_back(api: ComputeApi) -> None:
    net1, net2 = api.fake.network("n1"), api.fake.network("n2")
    web = api.fake.security_group("web")
    sid = api.boot(networks=[{"uuid": net1["id"]}, {"uuid": net2["id"]}])["server"]["id"]
    first, second = api.fake.ports.values()
    api.fake.refuse_updates[second["id"]] = ServiceError("port security disabled", status=409)
    resp = act(api, sid, "addSecurityGroup", {"name": "web"})
    assert resp.status_code == 400 and "port security disabled" in err(resp)[1]
    assert first["security_groups"] == [] and second["security_groups"] == []
    assert groups_of(api, sid) == ["default"]
    api.fake.refuse_updates[second["id"]] = ServiceError("down", status=503, temporary=True)
    assert act(api, sid, "addSecurityGroup", {"name": "web"}).status_code == 503
    assert first["security_groups"] == []
    api.fake.refuse_updates.clear()
    assert act(api, sid, "addSecurityGroup", {"name": "web"}).status_code == 202
    assert first["security_groups"] == [web["id"]] == second["security_groups"]


def test_a_users_own_port_is_left_alone(api: ComputeApi) -> None:
    net = api.fake.network("n1")
    web = api.fake.security_group("web")
    mine = api.fake.create_port(ALICE, {"network_id": net["id"]})
    sid = api.boot(networks=[{"port": mine["id"]}, {"uuid": net["id"]}])["server"]["id"]
    made = next(p for p in api.fake.ports.values() if p["id"] != mine["id"])
    assert act(api, sid, "addSecurityGroup", {"name": "web"}).status_code == 202
    assert made["security_groups"] == [web["id"]]
    assert api.fake.ports[mine["id"]]["security_groups"] == []
