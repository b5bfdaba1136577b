"""Nova's security-group proxy (os-security-groups, os-security-group-rules) against the
fake network API: what is sent to the network API, Nova's shapes and errors, the caller's
identity on every call, and the end of the proxy at microversion 2.36."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compute_api import ALICE, BOB, ComputeApi, in_process
from stratus.common.clients import ServiceError

pytestmark = pytest.mark.unit
G = "/v2.1/os-security-groups"
R = "/v2.1/os-security-group-rules"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ComputeApi]:
    with in_process(tmp_path) as client:
        yield client


def err(resp: Any) -> tuple[int, str]:
    value = next(iter(resp.json().values()))
    return resp.status_code, value["message"]


def group(api: ComputeApi, name: str = "web", token: str = ALICE) -> dict[str, Any]:
    body = {"security_group": {"name": name, "description": f"{name} group"}}
    return api.ok("POST", G, token, version="2.1", json=body)["security_group"]


def rule(api: ComputeApi, **attrs: Any) -> Any:
    return api.call("POST", R, ALICE, version="2.1", json={"security_group_rule": attrs})


def test_groups_are_the_callers_in_novas_shape(api: ComputeApi) -> None:
    web = group(api)
    assert web["tenant_id"] == "p-alice" and web["rules"] == []
    assert api.fake.groups[web["id"]]["project_id"] == "p-alice"
    names = [g["name"] for g in api.ok("GET", G, ALICE, version="2.1")["security_groups"]]
    assert names == ["default", "web"]
    # Bob's call carries Bob's token: the network API hides Alice's group from him.
    resp = api.call("GET", f"{G}/{web['id']}", BOB, version="2.1")
    assert resp.status_code == 404
    assert [g["name"] for g in api.ok("GET", G, BOB, version="2.1")["security_groups"]] \
        == ["default"]
    upd = {"security_group": {"name": "web2", "description": "d"}}
    assert api.ok("PUT", f"{G}/{web['id']}", ALICE, version="2.1",
                  json=upd)["security_group"]["name"] == "web2"
    assert api.call("DELETE", f"{G}/{web['id']}", BOB, version="2.1").status_code == 404
    assert api.call("DELETE", f"{G}/{web['id']}", ALICE, version="2.1").status_code == 202
    assert web["id"] not in api.fake.groups


@pytest.mark.parametrize("body", [
    {"name": "", "description": "d"}, {"name": "  ", "description": "d"},
    {"name": "x" * 256, "description": "d"}, {"name": "n", "description": ""},
    {"name": "n"}, {"name": 3, "description": "d"},
    {"name": "n", "description": "d", "rules": []}])
def test_bad_group_bodies_are_400(api: ComputeApi, body: dict[str, Any]) -> None:
    resp = api.call("POST", G, ALICE, version="2.1", json={"security_group": body})
    assert resp.status_code == 400, resp.text
    assert not api.fake.groups


def test_default_group_cannot_be_deleted_and_in_use_is_400(api: ComputeApi) -> None:
    default = next(g for g in api.ok("GET", G, ALICE, version="2.1")["security_groups"]
                   if g["name"] == "default")
    status, message = err(api.call("DELETE", f"{G}/{default['id']}", ALICE, version="2.1"))
    assert status == 400 and "default" in message
    web = group(api)
    api.fake.ports["p1"] = {"id": "p1", "security_groups": [web["id"]]}
    status, message = err(api.call("DELETE", f"{G}/{web['id']}", ALICE, version="2.1"))
    assert status == 400 and "in use" in message
    assert api.call("GET", f"{G}/no-such", ALICE, version="2.1").status_code == 404


def test_rules_map_to_network_rules(api: ComputeApi) -> None:
    web = group(api)
    gid = web["id"]
    ssh = rule(api, parent_group_id=gid, ip_protocol="TCP", from_port="22", to_port=22,
               cidr="10.1.2.3/8").json()["security_group_rule"]
    assert ssh == {"id": ssh["id"], "parent_group_id": gid, "ip_protocol": "tcp",
                   "from_port": 22, "to_port": 22, "ip_range": {"cidr": "10.1.2.3/8"},
                   "group": {}}
    ping = rule(api, parent_group_id=gid, ip_protocol="icmp", from_port=-1, to_port=-1)
    assert ping.json()["security_group_rule"]["from_port"] == -1
    peers = rule(api, parent_group_id=gid, ip_protocol="udp", from_port=53, to_port=53,
                 group_id=gid).json()["security_group_rule"]
    assert peers["group"] == {"name": "web", "tenant_id": "p-alice"}
    assert peers["ip_range"] == {}
    sent = {r["id"]: r for r in api.fake.groups[gid]["security_group_rules"]}
    assert sent[ssh["id"]]["direction"] == "ingress"
    assert sent[ssh["id"]]["remote_ip_prefix"] == "10.1.2.3/8"
    assert (sent[ping.json()["security_group_rule"]["id"]]["port_range_min"],
            sent[ping.json()["security_group_rule"]["id"]]["port_range_max"]) == (None, None)
    assert sent[peers["id"]]["remote_group_id"] == gid
    status, message = err(rule(api, parent_group_id=gid, ip_protocol="tcp", from_port=22,
                               to_port=22, cidr="10.1.2.3/8"))
    assert status == 400 and "already exists" in message
    assert api.call("DELETE", f"{R}/{ssh['id']}", BOB, version="2.1").status_code == 404
    assert api.call("DELETE", f"{R}/{ssh['id']}", ALICE, version="2.1").status_code == 202
    assert ssh["id"] not in {r["id"] for r in api.fake.groups[gid]["security_group_rules"]}
    assert api.call("DELETE", f"{R}/{ssh['id']}", ALICE, version="2.1").status_code == 404


@pytest.mark.parametrize("attrs", [
    {"ip_protocol": "tcp", "from_port": 0, "to_port": 22},
    {"ip_protocol": "tcp", "from_port": 80, "to_port": 22},
    {"ip_protocol": "tcp", "from_port": 22},
    {"ip_protocol": "gre", "from_port": 1, "to_port": 1},
    {"ip_protocol": "icmp", "from_port": 256, "to_port": -1},
    {"ip_protocol": "tcp", "from_port": "x", "to_port": 22},
    {"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "not-a-cidr"},
    {"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8",
     "group_id": "x"},
    {"from_port": 22, "to_port": 22},
    {"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "direction": "egress"}])
def test_bad_rules_are_400_and_make_nothing(api: ComputeApi, attrs: dict[str, Any]) -> None:
    gid = group(api)["id"]
    resp = rule(api, parent_group_id=gid, **attrs)
    assert resp.status_code == 400, resp.text
    assert api.fake.groups[gid]["security_group_rules"] == []


def test_missing_parent_and_unreachable_network(api: ComputeApi) -> None:
    resp = rule(api, ip_protocol="tcp", from_port=22, to_port=22)
    assert resp.status_code == 400 and "parent_group_id" in resp.text
    # s8t: an id that is no UUID is Nova's 400 (Tempest's negative test); an unknown
    # UUID the network API's 404
    resp = rule(api, parent_group_id="nope", ip_protocol="tcp", from_port=22, to_port=22)
    assert resp.status_code == 400 and "nope" in resp.text
    resp = rule(api, parent_group_id="0e7c5a2e-9a4b-4c1f-8f3e-1d2c3b4a5f60",
                ip_protocol="tcp", from_port=22, to_port=22)
    assert resp.status_code == 404
    gone = api.call("DELETE", f"{G}/", ALICE, version="2.1")
    assert gone.status_code == 404 and "No security group id" in gone.text

    def down(*args: Any, **kw: Any) -> Any:
        raise ServiceError("network unreachable", temporary=True)

    api.fake.list_security_groups = down  # type: ignore[method-assign]
    assert api.call("GET", G, ALICE, version="2.1").status_code == 503


def test_the_proxy_ends_at_2_36(api: ComputeApi) -> None:
    assert api.call("GET", G, ALICE, version="2.35").status_code == 200
    assert api.call("GET", G, ALICE, version="2.36").status_code == 404
    body = {"security_group": {"name": "web", "description": "d"}}
    assert api.call("POST", G, ALICE, version="2.36", json=body).status_code == 404
    assert not api.fake.groups
