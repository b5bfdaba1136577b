"""Nova's nova-network proxies (os-floating-ips, os-floating-ip-pools, os-networks,
os-tenant-networks) in front of the real network API in-process, over HttpDownstream with
the caller's token: Nova's shapes checked against Tempest's own schemas, Nova's errors for
the network API's refusals, and the end of the proxies at microversion 2.36."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient
from tempest.lib.api_schema.response.compute.v2_1 import floating_ips as fip_schemas
from tempest.lib.api_schema.response.compute.v2_1 import tenant_networks as net_schemas
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

import network_api
from compute_api import ADMIN, ALICE, BOB, ComputeApi, fake_validate, make_core
from network_api import NetApi
from stratus.common.clients import ApiClient, ServiceError
from stratus.compute.app import build_app
from stratus.compute.downstream import HttpDownstream

pytestmark = pytest.mark.unit
NEUTRON = "http://network.test:9696"
F = "/v2.1/os-floating-ips"
N = "/v2.1/os-networks"
T = "/v2.1/os-tenant-networks"


class Cloud:
    """The compute API (``api``) in front of the network API (``net``)."""

    def __init__(self, api: ComputeApi, net: NetApi, ds: HttpDownstream) -> None:
        self.api, self.net, self.ds = api, net, ds

    def call(self, method: str, path: str, token: str = ALICE, version: str = "2.1",
             **kw: Any) -> httpx.Response:
        return self.api.call(method, path, token, version, **kw)

    def check(self, method: str, path: str, schema: dict[str, Any], token: str = ALICE,
              version: str = "2.1", **kw: Any) -> Any:
        """The call's answer, validated as Tempest validates it."""
        resp = self.call(method, path, token, version, **kw)
        assert resp.status_code in schema["status_code"], (path, resp.status_code, resp.text)
        body = resp.json() if resp.content else None
        if schema.get("response_body"):
            jsonschema.validate(body, schema["response_body"], cls=JSONSCHEMA_VALIDATOR,
                                format_checker=FORMAT_CHECKER)
        return body

    def external(self, name: str = "public", cidr: str = "203.0.113.0/24",
                 **subnet: Any) -> dict[str, Any]:
        net = self.net.network(name=name, **{"router:external": True})
        self.net.subnet(net["id"], cidr, **subnet)
        return net

    def allocate(self, pool: str, token: str = ALICE) -> dict[str, Any]:
        body = self.check("POST", F, fip_schemas.create_get_floating_ip, token,
                          json={"pool": pool})
        return dict(body["floating_ip"])


def err(resp: httpx.Response) -> tuple[int, str]:
    value = next(iter(resp.json().values()))
    return resp.status_code, str(value["message"])


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with network_api.in_process(tmp_path, raise_server_exceptions=False) as net:
        ds = HttpDownstream("http://image.test:9292", NEUTRON, None)
        ds._caller_net = ApiClient(NEUTRON, None, service="network", http=net.client)
        core = make_core(f"sqlite:///{tmp_path}/compute.sqlite", None,
                         ds)  # type: ignore[arg-type]
        app = build_app(core, fake_validate, public_url="http://compute.test:8774")
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Cloud(ComputeApi(client, core, None), net, ds)  # type: ignore[arg-type]
        core.db.dispose()


def test_allocate_show_list_release_in_novas_shape(cloud: Cloud) -> None:
    public = cloud.external()
    pools = cloud.call("GET", "/v2.1/os-floating-ip-pools").json()
    assert pools == {"floating_ip_pools": [{"name": "public"}]}
    by_name = cloud.allocate("public")
    by_id = cloud.allocate(public["id"])
    assert by_name["pool"] == by_id["pool"] == "public"
    assert by_name["ip"].startswith("203.0.113.") and by_name["ip"] != by_id["ip"]
    assert by_name["fixed_ip"] is None and by_name["instance_id"] is None
    # the network API holds it, in Alice's project
    held = cloud.net.ok("GET", f"/v2.0/floatingips/{by_name['id']}")["floatingip"]
    assert held["project_id"] == "p-alice" and held["floating_ip_address"] == by_name["ip"]
    shown = cloud.check("GET", f"{F}/{by_name['id']}", fip_schemas.create_get_floating_ip)
    assert shown["floating_ip"] == by_name
    listed = cloud.check("GET", F, fip_schemas.list_floating_ips)["floating_ips"]
    assert sorted(f["id"] for f in listed) == sorted([by_name["id"], by_id["id"]])
    assert by_name in listed
    # Bob's token: he neither sees nor releases Alice's addresses
    assert cloud.check("GET", F, fip_schemas.list_floating_ips, BOB)["floating_ips"] == []
    assert err(cloud.call("GET", f"{F}/{by_name['id']}", BOB)) == (
        404, f"Floating IP not found for ID {by_name['id']}")
    assert cloud.call("DELETE", f"{F}/{by_name['id']}", BOB).status_code == 404
    resp = cloud.call("DELETE", f"{F}/{by_name['id']}")
    assert resp.status_code == 202 and not resp.content
    assert cloud.net.call("GET", f"/v2.0/floatingips/{by_name['id']}").status_code == 404
    assert cloud.call("GET", f"{F}/{by_name['id']}").status_code == 404
    assert cloud.call("DELETE", f"{F}/{by_name['id']}").status_code == 404


def test_an_associated_address_shows_its_server_and_fixed_ip(cloud: Cloud) -> None:
    public = cloud.external()
    tenant = cloud.net.network(ALICE, name="app")
    sub = cloud.net.subnet(tenant["id"], "192.168.7.0/24", ALICE)
    router = cloud.net.router(ALICE, external_gateway_info={"network_id": public["id"]})
    cloud.net.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
                 json={"subnet_id": sub["id"]})
    server = "5e1f2c0a-1111-4111-8111-0000000000aa"
    port = cloud.net.port(tenant["id"], ALICE, device_id=server, device_owner="compute:nova")
    fip = cloud.allocate("public")
    cloud.net.ok("PUT", f"/v2.0/floatingips/{fip['id']}", ALICE,
                 json={"floatingip": {"port_id": port["id"]}})
    shown = cloud.check("GET", f"{F}/{fip['id']}",
                        fip_schemas.create_get_floating_ip)["floating_ip"]
    assert shown == {**fip, "instance_id": server,
                     "fixed_ip": port["fixed_ips"][0]["ip_address"]}
    listed = cloud.check("GET", F, fip_schemas.list_floating_ips)["floating_ips"]
    assert listed == [shown]
    # releasing an associated address releases it (the network API disassociates)
    assert cloud.call("DELETE", f"{F}/{fip['id']}").status_code == 202
    assert cloud.net.ok("GET", "/v2.0/floatingips", ALICE)["floatingips"] == []


def test_pool_errors(cloud: Cloud) -> None:
    status, message = err(cloud.call("POST", F, json={}))
    assert status == 400 and "pools are: none" in message
    cloud.external()
    assert cloud.call("POST", F, json={})
    assert cloud.call("POST", F, json={}).json()["floating_ip"]["pool"] == "public"
    cloud.external("public2", "198.51.100.0/24")
    status, message = err(cloud.call("POST", F, json={}))
    assert status == 400 and "public, public2" in message
    status, message = err(cloud.call("POST", F, json={"pool": "non_exist_pool"}))
    assert status == 404 and "'non_exist_pool'" in message
    for bad in (3, "", "  ", ["public"]):
        status, message = err(cloud.call("POST", F, json={"pool": bad}))
        assert status == 400 and "pool" in message
    assert cloud.call("POST", F, json=["public"]).status_code == 400
    cloud.external("public2", "192.0.2.0/24")
    status, message = err(cloud.call("POST", F, json={"pool": "public2"}))
    assert status == 400 and "Several" in message
    # a tenant network is no pool
    tenant = cloud.net.network(ALICE, name="mine")
    assert cloud.call("POST", F, json={"pool": tenant["id"]}).status_code == 404
    names = [p["name"] for p in cloud.call("GET", "/v2.1/os-floating-ip-pools").json()[
        "floating_ip_pools"]]
    assert sorted(names) == ["public", "public2", "public2"]


def test_exhausted_pool_is_404_and_over_quota_403(cloud: Cloud) -> None:
    cloud.external("tiny", "203.0.113.0/30", enable_dhcp=False, allocation_pools=[
        {"start": "203.0.113.2", "end": "203.0.113.2"}])
    cloud.allocate("tiny")
    assert err(cloud.call("POST", F, json={"pool": "tiny"})) == (
        404, "No more floating IPs in pool tiny.")
    cloud.external("big", "198.51.100.0/24")
    cloud.net.ok("PUT", "/v2.0/quotas/p-alice", json={"quota": {"floatingip": 1}})
    assert err(cloud.call("POST", F, json={"pool": "big"})) == (
        403, "IP allocation over quota in pool big.")
    assert cloud.net.ok("GET", "/v2.0/floatingips", ALICE)["floatingips"][0][
        "floating_ip_address"] == "203.0.113.2"


def test_a_failing_network_api_is_503_never_500(cloud: Cloud) -> None:
    public = cloud.external()
    fip = cloud.allocate("public")

    def down(*args: Any, **kw: Any) -> Any:
        raise ServiceError("network unreachable", temporary=True)

    for name in ("list_networks", "list_floatingips", "get_floatingip", "get_network",
                 "create_floatingip", "delete_floatingip"):
        saved = getattr(cloud.ds, name)
        setattr(cloud.ds, name, down)
        unavailable = 0
        calls: list[tuple[str, str, Any]] = [
            ("GET", F, None), ("GET", f"{F}/{fip['id']}", None), ("POST", F, {"pool": "public"}),
            ("GET", "/v2.1/os-floating-ip-pools", None), ("GET", N, None),
            ("GET", f"{N}/{public['id']}", None), ("GET", T, None)]
        if name in ("get_floatingip", "delete_floatingip"):  # a release needs one of them
            calls.append(("DELETE", f"{F}/{fip['id']}", None))
        for method, path, body in calls:
            resp = cloud.call(method, path, json=body)
            assert resp.status_code in (200, 202, 503), (name, method, path, resp.text)
            if resp.status_code == 503:
                unavailable += 1
                assert "network API failed" in err(resp)[1]
            elif method == "POST":  # this call did not need what is down: undo it
                made = resp.json()["floating_ip"]["id"]
                cloud.net.ok("DELETE", f"/v2.0/floatingips/{made}", ALICE)
        assert unavailable, name
        setattr(cloud.ds, name, saved)
    assert cloud.call("GET", f"{F}/{fip['id']}").status_code == 200
    assert len(cloud.net.ok("GET", "/v2.0/floatingips", ALICE)["floatingips"]) == 1


def test_networks_proxy(cloud: Cloud) -> None:
    public = cloud.external()
    mine = cloud.net.network(ALICE, name="mine")
    shared = cloud.net.network(name="shared", shared=True)
    bobs = cloud.net.network(BOB, name="bobs")
    listed = cloud.check("GET", T, net_schemas.list_tenant_networks)["networks"]
    assert {n["id"] for n in listed} == {public["id"], mine["id"], shared["id"]}
    assert {"id": mine["id"], "cidr": "None", "label": "mine"} in listed
    shown = cloud.check("GET", f"{T}/{mine['id']}", net_schemas.get_tenant_network)
    assert shown == {"network": {"id": mine["id"], "cidr": "None", "label": "mine"}}
    assert cloud.call("GET", f"{T}/{bobs['id']}").status_code == 404
    # os-networks: id and label, nova-network's keys null (an admin's more of them)
    nets = cloud.call("GET", N).json()["networks"]
    assert {n["id"] for n in nets} == {public["id"], mine["id"], shared["id"]}
    one = cloud.call("GET", f"{N}/{mine['id']}").json()["network"]
    assert one["label"] == "mine" and one["cidr"] is None and "vlan" not in one
    assert len(one) == 11 and all(v is None for k, v in one.items() if k not in ("id", "label"))
    admin_one = cloud.call("GET", f"{N}/{mine['id']}", ADMIN).json()["network"]
    assert admin_one["vlan"] is None and admin_one["project_id"] is None
    assert len(admin_one) == 32
    assert {n["id"] for n in cloud.call("GET", N, ADMIN).json()["networks"]} >= {bobs["id"]}
    status, message = err(cloud.call("GET", f"{N}/{bobs['id']}"))
    assert status == 404 and bobs["id"] in message


@pytest.mark.parametrize(("method", "path"), [
    ("POST", N), ("POST", N + "/add"), ("DELETE", N + "/x"), ("POST", N + "/x/action"),
    ("POST", T), ("DELETE", T + "/x")])
def test_nova_network_only_actions_are_gone(cloud: Cloud, method: str, path: str) -> None:
    body = {"network": {"label": "n", "cidr": "10.0.0.0/24"}} if method == "POST" else None
    for version in ("2.1", "2.36", "2.96"):
        resp = cloud.call(method, path, ADMIN, version, json=body)
        assert resp.status_code == 410, resp.text
        assert "nova-network is gone" in resp.json()["computeFault"]["message"]
    assert cloud.net.ok("GET", "/v2.0/networks")["networks"] == []


def test_the_proxies_end_at_2_36(cloud: Cloud) -> None:
    public = cloud.external()
    fip = cloud.allocate("public")
    for path in (F, f"{F}/{fip['id']}", "/v2.1/os-floating-ip-pools", N,
                 f"{N}/{public['id']}", T, f"{T}/{public['id']}"):
        assert cloud.call("GET", path, version="2.35").status_code == 200, path
        resp = cloud.call("GET", path, version="2.36")
        assert resp.status_code == 404 and "2.36" in err(resp)[1], path
    assert cloud.call("POST", F, version="2.36", json={"pool": "public"}).status_code == 404
    assert cloud.call("DELETE", f"{F}/{fip['id']}", version="2.36").status_code == 404
    assert len(cloud.net.ok("GET", "/v2.0/floatingips", ALICE)["floatingips"]) == 1
