"""Network API handlers called directly, with a fake service layer (no database, no app)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Forbidden
from stratus.network.api import agent_hosts, networks, ports, quotas, routers
from stratus.network.core import NetworkCore

pytestmark = pytest.mark.unit

ALICE = AuthContext(user_id="u-alice", project_id="p-alice", roles=frozenset({"member"}))
AGENT = AuthContext(user_id="u-agent", project_id="p-service", roles=frozenset({"admin"}))


def request(method: str, path: str, params: dict[str, str] | None = None, query: str = "",
            body: Any = None, ctx: AuthContext = ALICE) -> Req:
    scope = {"type": "http", "method": method, "path": path, "path_params": params or {},
             "query_string": query.encode(), "headers": [(b"host", b"network.test")],
             "scheme": "http", "app": SimpleNamespace(state=SimpleNamespace(public_url=""))}
    return Req(Request(scope), body, lambda _token: ctx)


class FakeNetworks:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def visible(self, ctx: AuthContext) -> list[dict[str, Any]]:
        return [{"id": f"n{i}", "name": f"net{i}", "project_id": ctx.project_id}
                for i in range(3)]

    def show(self, ctx: AuthContext, network_id: str) -> dict[str, Any]:
        return {"id": network_id, "name": "one", "mtu": 1450}

    def update(self, ctx: AuthContext, network_id: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update", network_id, obj))
        return {"id": network_id, **obj}

    def create(self, ctx: AuthContext, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(("create", ctx.project_id, objs))
        return [{"id": "new", **o} for o in objs]


def fake_service(**resources: Any) -> Any:
    """Only what the handlers use: the policy helpers and the resource services."""
    return SimpleNamespace(require_member=NetworkCore.require_member,
                           require_admin=NetworkCore.require_admin, owns=NetworkCore.owns,
                           **resources)


def test_list_handler_renders_what_the_service_answers_with_listing_applied() -> None:
    svc = fake_service(networks=FakeNetworks())
    answer = networks.list_networks(request("GET", "/v2.0/networks", query="limit=2"), svc)
    assert [n["id"] for n in answer["networks"]] == ["n0", "n1"]
    assert answer["networks_links"][0]["rel"] == "next"


def test_show_handler_trims_fields() -> None:
    svc = fake_service(networks=FakeNetworks())
    req = request("GET", "/v2.0/networks/n1", {"network_id": "n1"}, query="fields=mtu")
    assert networks.show_network(req, svc) == {"network": {"mtu": 1450}}


def test_create_and_update_handlers_pass_the_parsed_objects_on() -> None:
    fake = FakeNetworks()
    svc = fake_service(networks=fake)
    made = networks.create_networks(
        request("POST", "/v2.0/networks", body={"networks": [{"name": "a"}, {"name": "b"}]}),
        svc)
    assert [n["name"] for n in made["networks"]] == ["a", "b"]
    req = request("PUT", "/v2.0/networks/n9", {"network_id": "n9"},
                  body={"network": {"name": "c"}})
    assert networks.update_network(req, svc) == {"network": {"id": "n9", "name": "c"}}
    assert fake.calls == [("create", "p-alice", [{"name": "a"}, {"name": "b"}]),
                          ("update", "n9", {"name": "c"})]


def test_handlers_refuse_bad_requests_before_reaching_the_service() -> None:
    svc = fake_service()  # no resource service at all: nothing may be called
    with pytest.raises(BadRequest, match="Unrecognized attribute"):
        networks.update_network(request("PUT", "/v2.0/networks/n1", {"network_id": "n1"},
                                        body={"network": {"colour": "red"}}), svc)
    with pytest.raises(BadRequest, match="Resource body required"):
        ports.update_port(request("PUT", "/v2.0/ports/p1", {"port_id": "p1"}, body=[]), svc)
    with pytest.raises(BadRequest, match="Either subnet_id or port_id"):
        routers.add_interface(request("PUT", "/v2.0/routers/r1/add_router_interface",
                                      {"router_id": "r1"}, body={}), svc)
    with pytest.raises(Forbidden, match="rule:update_quota"):
        quotas.update_quota(request("PUT", "/v2.0/quotas/p-alice", {"project_id": "p-alice"},
                                    body={"quota": {"network": 1}}), svc)


class FakeHosts:
    def __init__(self) -> None:
        self.waited: list[tuple[object, int, float]] = []
        self.watch = self

    async def wait(self, key: object, since: int, timeout: float) -> int:
        self.waited.append((key, since, timeout))
        return since + 1

    def state(self, host: str, network_node: bool | None, underlay: str | None = None
              ) -> dict[str, Any]:
        return {"host": host, "network_node": network_node, "underlay": underlay,
                "generation": 8}


def test_the_async_long_poll_handler_waits_on_the_service_then_answers_the_state() -> None:
    hosts = FakeHosts()
    svc = fake_service(hosts=hosts)
    req = request("GET", "/v2.0/stratus-agent/hosts/cmp1", {"host": "cmp1"},
                  query="since=7&wait=90&network_node=true&underlay_ip=10.0.0.11", ctx=AGENT)
    answer = asyncio.run(agent_hosts.host_state_path(req, svc))
    assert answer == {"host": "cmp1", "network_node": True, "underlay": "10.0.0.11",
                      "generation": 8}
    # The host's own generation (as a network node), the wait cut to MAX_WAIT.
    assert hosts.waited == [(("cmp1", True), 7, 30.0)]
    with pytest.raises(Forbidden):
        asyncio.run(agent_hosts.host_state_path(
            request("GET", "/v2.0/stratus-agent/hosts/cmp1", {"host": "cmp1"}), svc))
