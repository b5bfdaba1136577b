"""The network-side convergences (network, router, security group, floating IP) against a fake
network API.

Each runs in check mode first (it must write nothing), then for real (the
same ``changed`` and diff), then again (no change).
"""

from __future__ import annotations

import copy
import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compute_module_fakes import PROJECT, collections_root

pytestmark = [pytest.mark.unit]
PREFIX = "ansible_collections.stratus.cloud.plugins.module_utils"


class FakeNetworkApi:
    """The NetworkApi methods the convergences use, over dicts; records every write."""

    project_id = PROJECT

    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self.writes: list[tuple[str, Any]] = []
        self.items: dict[str, dict[str, dict[str, Any]]] = {
            c: {}
            for c in (
                "networks",
                "subnets",
                "ports",
                "routers",
                "floatingips",
                "security-groups",
                "security-group-rules",
            )
        }

    def add(self, collection: str, **item: Any) -> dict[str, Any]:
        item.setdefault("id", str(uuid.uuid4()))
        item.setdefault("project_id", PROJECT)
        self.items[collection][item["id"]] = item
        return item

    def list(self, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        found = [
            i["id"]
            for i in self.items[collection].values()
            if all(i.get(k) == v for k, v in (query or {}).items())
        ]
        return [self.get(collection, item_id) or {} for item_id in found]

    def get(self, collection: str, item_id: str) -> dict[str, Any] | None:
        item = self.items[collection].get(item_id)
        if item is not None and collection == "security-groups":
            item = dict(
                item,
                security_group_rules=self.list(
                    "security-group-rules", {"security_group_id": item_id}
                ),
            )
        return copy.deepcopy(item)

    def find(self, collection: str, name_or_id: str, project_id: str | None = None) -> Any:
        if name_or_id in self.items[collection]:
            return self.get(collection, name_or_id)
        found = self.list(collection, {"name": name_or_id})
        return found[0] if found else None

    def require(self, collection: str, name_or_id: str, project_id: str | None = None) -> Any:
        item = self.find(collection, name_or_id, project_id)
        if item is None:
            raise self.error(f"{collection} {name_or_id!r} was not found.")
        return item

    def create(self, collection: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append((f"create.{collection}", attrs))
        item = self.add(collection, **copy.deepcopy(attrs))
        if collection == "security-groups":
            for ethertype in ("IPv4", "IPv6"):
                self.add(
                    "security-group-rules",
                    security_group_id=item["id"],
                    direction="egress",
                    ethertype=ethertype,
                    protocol=None,
                    port_range_min=None,
                    port_range_max=None,
                    remote_ip_prefix=None,
                    remote_group_id=None,
                )
            return self.get(collection, item["id"]) or {}
        if collection == "floatingips":
            item.setdefault("floating_ip_address", f"172.24.4.{len(self.items[collection])}")
        if collection == "routers":
            item.setdefault("external_gateway_info", None)
        return copy.deepcopy(item)

    def update(self, collection: str, item_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        self.writes.append((f"update.{collection}", attrs))
        self.items[collection][item_id].update(copy.deepcopy(attrs))
        return self.get(collection, item_id) or {}

    def delete(self, collection: str, item_id: str) -> None:
        self.writes.append((f"delete.{collection}", item_id))
        self.items[collection].pop(item_id, None)

    def router_interface(
        self, router_id: str, action: str, subnet_id: str | None = None, port_id: str | None = None
    ) -> dict[str, Any]:
        self.writes.append((f"router_interface.{action}", subnet_id or port_id))
        if action == "add":
            assert subnet_id is not None
            subnet = self.items["subnets"][subnet_id]
            self.add(
                "ports",
                device_id=router_id,
                device_owner="network:router_interface",
                fixed_ips=[{"subnet_id": subnet_id, "ip_address": subnet.get("gateway_ip")}],
            )
        else:
            self.items["ports"].pop(port_id or "", None)
        return {}

    def router_interfaces(self, router_id: str) -> list[dict[str, Any]]:
        ports = self.list("ports", {"device_id": router_id})
        return [
            {"port_id": p["id"], "subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
            for p in ports
            for ip in p["fixed_ips"]
        ]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from collections_root(tmp_path_factory)


def utils(name: str) -> Any:
    return importlib.import_module(f"{PREFIX}.{name}")


@pytest.fixture
def api(collections_path: Path) -> FakeNetworkApi:
    return FakeNetworkApi(utils("stratus_client").StratusError)


def converge(
    logic: type, api: FakeNetworkApi, params: dict[str, Any], changed: bool = True
) -> dict[str, Any]:
    """Check mode (writes nothing), the real run (same changed and diff), then no change."""
    before = copy.deepcopy(api.items)
    checked = logic(api, params, True).run()
    assert api.writes == [] and api.items == before
    real = logic(api, params, False).run()
    assert (checked["changed"], checked["diff"]) == (real["changed"], real["diff"])
    assert real["changed"] is changed
    writes = list(api.writes)
    del api.writes[:]
    again = logic(api, params, False).run()
    assert again["changed"] is False and api.writes == [], api.writes
    api.writes[:] = writes
    return real


def network_params(**kw: Any) -> dict[str, Any]:
    base = {
        "name": "unet",
        "state": "present",
        "description": None,
        "project": None,
        "admin_state_up": None,
        "shared": None,
        "external": None,
        "provider_network_type": None,
        "provider_physical_network": None,
        "provider_segmentation_id": None,
        "mtu": None,
        "port_security_enabled": None,
        "subnets": None,
        "purge_subnets": False,
    }
    return {**base, **kw}


def subnet(name: str, cidr: str, **kw: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "cidr": cidr,
        "gateway_ip": None,
        "disable_gateway_ip": False,
        "enable_dhcp": True,
        "allocation_pools": None,
        "dns_nameservers": None,
        "host_routes": None,
        "description": None,
    }
    return {**base, **kw}


def test_network_with_subnets(api: FakeNetworkApi) -> None:
    logic = utils("stratus_network").NetworkConvergence
    created = converge(logic, api, network_params(subnets=[subnet("a", "10.1.0.5/24")]))
    assert created["network"]["name"] == "unet"
    assert [s["cidr"] for s in created["subnets"]] == ["10.1.0.0/24"]
    assert [w[0] for w in api.writes] == ["create.networks", "create.subnets"]
    del api.writes[:]
    p = network_params(mtu=1400, subnets=[subnet("b", "10.2.0.0/24")], purge_subnets=True)
    updated = converge(logic, api, p)
    assert updated["diff"]["after"]["mtu"] == 1400
    assert set(updated["diff"]["after"]) == {"mtu", "subnet a", "subnet b"}
    assert [s["name"] for s in updated["subnets"]] == ["b"]
    del api.writes[:]
    gone = converge(logic, api, network_params(state="absent"))
    assert set(gone) == {"changed", "diff"} and api.items["networks"] == {}


def test_network_refuses_what_cannot_change(api: FakeNetworkApi) -> None:
    logic = utils("stratus_network").NetworkConvergence
    api.add("networks", name="unet", **{"provider:network_type": "vxlan"})
    for check in (True, False):
        with pytest.raises(utils("stratus_client").StratusError, match="cannot change"):
            logic(api, network_params(provider_network_type="flat"), check).run()
    assert api.writes == []


def router_params(**kw: Any) -> dict[str, Any]:
    base = {
        "name": "urouter",
        "state": "present",
        "description": None,
        "project": None,
        "admin_state_up": None,
        "network": None,
        "enable_snat": None,
        "external_fixed_ips": None,
        "interfaces": None,
    }
    return {**base, **kw}


def test_router_gateway_and_interfaces(api: FakeNetworkApi) -> None:
    logic = utils("stratus_router").RouterConvergence
    public = api.add("networks", name="public", **{"router:external": True})
    a = api.add("subnets", name="a", gateway_ip="10.1.0.1")
    b = api.add("subnets", name="b", gateway_ip="10.2.0.1")
    created = converge(logic, api, router_params(network="public", interfaces=["a"]))
    assert created["router"]["external_gateway_info"] == {
        "network_id": public["id"],
        "enable_snat": True,
    }
    assert [i["subnet_id"] for i in created["interfaces"]] == [a["id"]]
    del api.writes[:]
    moved = converge(logic, api, router_params(enable_snat=False, interfaces=["b"]))
    assert moved["diff"]["after"]["interfaces"] == ["subnet b"]
    assert [w[0] for w in api.writes] == [
        "router_interface.remove",
        "update.routers",
        "router_interface.add",
    ]
    assert [i["subnet_id"] for i in moved["interfaces"]] == [b["id"]]
    del api.writes[:]
    gone = converge(logic, api, router_params(state="absent"))
    assert set(gone) == {"changed", "diff"} and api.items["routers"] == {}


def group_params(**kw: Any) -> dict[str, Any]:
    base = {
        "name": "ugroup",
        "state": "present",
        "description": None,
        "project": None,
        "rules": None,
        "purge_rules": True,
    }
    return {**base, **kw}


def rule(**kw: Any) -> dict[str, Any]:
    base = {
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": None,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group": None,
        "description": None,
    }
    return {**base, **kw}


def test_security_group_rules(api: FakeNetworkApi) -> None:
    logic = utils("stratus_security_group").SecurityGroupConvergence
    ssh = rule(protocol="tcp", port_range_min=22, remote_ip_prefix="0.0.0.0/0")
    created = converge(logic, api, group_params(description="web", rules=[ssh]))
    assert created["diff"]["after"]["rules"] == ["ingress IPv4 tcp 22-22 from/to 0.0.0.0/0"]
    # The two egress rules a new group starts with were purged.
    assert len(created["security_group"]["security_group_rules"]) == 1
    del api.writes[:]
    own = rule(protocol="icmp", remote_group="ugroup")
    updated = converge(logic, api, group_params(description="web2", rules=[ssh, own]))
    assert updated["diff"]["before"]["description"] == "web"
    group_id = updated["security_group"]["id"]
    assert any(
        r.get("remote_group_id") == group_id
        for r in updated["security_group"]["security_group_rules"]
    )
    del api.writes[:]
    converge(logic, api, group_params(state="absent"))
    assert api.items["security-groups"] == {}


def fip_params(**kw: Any) -> dict[str, Any]:
    base = {
        "state": "present",
        "network": "public",
        "floating_ip_address": None,
        "port": None,
        "fixed_ip_address": None,
        "description": None,
    }
    return {**base, **kw}


def test_floating_ip_allocate_move_release(api: FakeNetworkApi) -> None:
    logic = utils("stratus_floating_ip").FloatingIPConvergence
    api.add("networks", name="public", **{"router:external": True})
    one = api.add("ports", name="one")
    two = api.add("ports", name="two")
    created = converge(logic, api, fip_params(floating_ip_address="172.24.4.99", port="one"))
    assert created["floating_ip"]["port_id"] == one["id"]
    del api.writes[:]
    moved = converge(logic, api, fip_params(floating_ip_address="172.24.4.99", port="two"))
    assert moved["diff"] == {"before": {"port_id": one["id"]}, "after": {"port_id": two["id"]}}
    del api.writes[:]
    detached = converge(logic, api, fip_params(floating_ip_address="172.24.4.99", port=""))
    assert detached["floating_ip"]["port_id"] is None
    del api.writes[:]
    gone = converge(logic, api, fip_params(floating_ip_address="172.24.4.99", state="absent"))
    assert set(gone) == {"changed", "diff"} and api.items["floatingips"] == {}
