"""addFloatingIp / removeFloatingIp in front of the real network API in-process (over
HttpDownstream, the caller's token on the floating-IP calls): the association the network
API really makes, the server's addresses showing it, moving an address between servers,
and the network API's own refusals answered as Nova answers them."""

from __future__ import annotations

from typing import Any

import pytest
from test_compute_network_proxies import Cloud, cloud  # noqa: F401 (the fixture)

from compute_api import ADMIN, ALICE, BOB, IMAGE
from stratus.common.clients import ApiClient, StaticToken

pytestmark = pytest.mark.unit
NEUTRON = "http://network.test:9696"
IMAGE_DOC = {"id": IMAGE, "name": "tiny", "status": "active", "disk_format": "qcow2",
             "container_format": "bare", "min_ram": 0, "min_disk": 0, "size": 1024,
             "properties": {}}


def boot(c: Cloud, network_id: str) -> str:
    resp = c.call("POST", "/v2.1/servers", ALICE, version="2.1", json={"server": {
        "name": "vm", "imageRef": IMAGE, "flavorRef": "1",
        "networks": [{"uuid": network_id}]}})
    assert resp.status_code == 202, resp.text
    sid = str(resp.json()["server"]["id"])
    c.api.report("cmp1", sid, vm_state="active", power_state=1)
    return sid


def act(c: Cloud, sid: str, body: dict[str, Any], token: str = ALICE) -> Any:
    return c.call("POST", f"/v2.1/servers/{sid}/action", token, json=body)


def floating_of(c: Cloud, sid: str) -> list[str]:
    srv = c.api.ok("GET", f"/v2.1/servers/{sid}", ADMIN, version="2.1")["server"]
    return [a["addr"] for net in srv["addresses"].values() for a in net
            if a["OS-EXT-IPS:type"] == "floating"]


def test_floating_ip_actions_over_the_real_network_api(
        cloud: Cloud) -> None:  # noqa: F811 (the fixture)
    c = cloud
    c.ds._service_net = ApiClient(NEUTRON, StaticToken(ADMIN), service="network",
                                  http=c.net.client)
    c.ds.get_image = lambda token, image_id: dict(IMAGE_DOC)
    c.api.flavor(id="1")
    c.api.host("cmp1")
    public = c.external()
    tenant = c.net.network(ALICE, name="app")
    sub = c.net.subnet(tenant["id"], "192.168.7.0/24", ALICE)
    lonely = c.net.network(ALICE, name="lonely")  # no router to the external network
    c.net.subnet(lonely["id"], "192.168.8.0/24", ALICE)
    router = c.net.router(ALICE, external_gateway_info={"network_id": public["id"]})
    c.net.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", ALICE,
             json={"subnet_id": sub["id"]})
    sid, other = boot(c, tenant["id"]), boot(c, tenant["id"])
    fip = c.allocate("public")
    add = {"addFloatingIp": {"address": fip["ip"]}}
    assert act(c, sid, add, BOB).status_code == 404  # Bob cannot see Alice's server
    resp = act(c, sid, add)
    assert resp.status_code == 202, resp.text
    held = c.net.ok("GET", f"/v2.0/floatingips/{fip['id']}", ALICE)["floatingip"]
    [port] = c.net.ok("GET", "/v2.0/ports", ADMIN, params={"device_id": sid})["ports"]
    assert held["port_id"] == port["id"]
    assert held["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert floating_of(c, sid) == [fip["ip"]]
    # a second floating IP for the same fixed IP: the network API refuses, Nova's 400
    second = c.allocate("public")
    resp = act(c, sid, {"addFloatingIp": {"address": second["ip"]}})
    assert resp.status_code == 400, resp.text
    # moved to another server (Nova with Neutron moves it)
    assert act(c, other, add).status_code == 202
    assert floating_of(c, other) == [fip["ip"]] and floating_of(c, sid) == []
    remove = {"removeFloatingIp": {"address": fip["ip"]}}
    assert act(c, sid, remove).status_code == 409
    assert act(c, other, remove).status_code == 202
    assert c.net.ok("GET", f"/v2.0/floatingips/{fip['id']}", ALICE)["floatingip"][
        "port_id"] is None
    # the network API's refusal (the subnet has no router to the external network): 400
    far = boot(c, lonely["id"])
    resp = act(c, far, add)
    assert resp.status_code == 400, resp.text
    assert "Unable to associate floating IP" in resp.text
