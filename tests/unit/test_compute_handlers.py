"""Compute API handlers called directly, with a fake service layer (no database, no app)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Forbidden
from stratus.compute import models as m
from stratus.compute.api import flavors, keypairs, server_actions, servers
from stratus.compute.core import ComputeCore
from stratus.compute.server_reads import ServerPage, ServerQuery

pytestmark = pytest.mark.unit

ALICE = AuthContext(user_id="u-alice", project_id="p-alice", roles=frozenset({"member"}))
READER = AuthContext(user_id="u-reader", project_id="p-alice", roles=frozenset({"reader"}))
ADMIN = AuthContext(user_id="u-admin", project_id="p-admin",
                    roles=frozenset({"admin", "member", "reader"}))
NOW = datetime(2026, 1, 2, 3, 4, 5)


def request(method: str, path: str, params: dict[str, str] | None = None, query: str = "",
            body: Any = None, ctx: AuthContext = ALICE, version: tuple[int, int] = (2, 47)
            ) -> Req:
    scope = {"type": "http", "method": method, "path": path, "path_params": params or {},
             "query_string": query.encode(), "headers": [(b"host", b"compute.test")],
             "scheme": "http", "state": {"microversion": version},
             "app": SimpleNamespace(state=SimpleNamespace(public_url="http://compute.test"))}
    return Req(Request(scope), body, lambda _token: ctx)


def fake_service(**resources: Any) -> Any:
    """Only what the handlers use: the policy helpers, settings and resource services."""
    return SimpleNamespace(require_member=ComputeCore.require_member,
                           require_admin=ComputeCore.require_admin, **resources)


def flavor(fid: str, ram: int, public: bool = True) -> m.Flavor:
    return m.Flavor(id=fid, name=f"f{fid}", vcpus=1, ram=ram, disk=1, ephemeral=0, swap=0,
                    rxtx_factor=1.0, is_public=public, extra_specs={}, created_at=NOW)


class FakeFlavors:
    def __init__(self) -> None:
        self.rows = [flavor("3", 2048), flavor("1", 512), flavor("2", 1024, public=False)]

    def visible(self, ctx: AuthContext) -> list[m.Flavor]:
        return list(self.rows)


def test_flavor_listing_filters_sorts_and_pages_what_the_service_answers() -> None:
    svc = fake_service(flavors=FakeFlavors())
    got = flavors.list_flavors(request("GET", "/v2.1/flavors", query="minRam=600"), svc)
    # A member sees what the service gives it (a private flavor its project may use too).
    assert [f["id"] for f in got["flavors"]] == ["2", "3"]
    got = flavors.list_flavors_detail(request(
        "GET", "/v2.1/flavors/detail", query="is_public=none&marker=1&limit=1", ctx=ADMIN), svc)
    assert [(f["id"], f["ram"]) for f in got["flavors"]] == [("2", 1024)]
    assert got["flavors"][0]["links"][0]["href"] == "http://compute.test/v2.1/flavors/2"
    with pytest.raises(BadRequest, match="marker \\[9\\] not found"):
        flavors.list_flavors(request("GET", "/v2.1/flavors", query="marker=9"), svc)


class FakeKeypairs:
    def __init__(self) -> None:
        self.created: list[tuple[Any, ...]] = []

    def create(self, project_id: str, user_id: str, name: str, kind: str, public_key: str
               ) -> m.KeyPair:
        self.created.append((project_id, user_id, name, kind, public_key))
        return m.KeyPair(id=7, user_id=user_id, name=name, type=kind, public_key=public_key,
                         fingerprint="aa:bb", created_at=NOW)


def test_keypair_create_checks_policy_and_input_before_the_service() -> None:
    svc = fake_service(keypairs=FakeKeypairs())
    body = {"keypair": {"name": "k1", "public_key": " ssh-ed25519 AAAA k1 \n"}}
    with pytest.raises(Forbidden):
        keypairs.create_keypair(request("POST", "/v2.1/os-keypairs", body=body, ctx=READER),
                                svc)
    with pytest.raises(BadRequest, match="names may contain"):
        keypairs.create_keypair(request("POST", "/v2.1/os-keypairs", body={
            "keypair": {"name": "k/1"}}), svc)
    assert svc.keypairs.created == []
    resp = keypairs.create_keypair(request("POST", "/v2.1/os-keypairs", body=body), svc)
    assert resp.status_code == 201
    assert svc.keypairs.created == [("p-alice", "u-alice", "k1", "ssh", "ssh-ed25519 AAAA k1")]
    old = keypairs.create_keypair(request("POST", "/v2.1/os-keypairs", body=body,
                                          version=(2, 1)), svc)
    assert old.status_code == 200 and b'"type"' not in old.body


def server(sid: str) -> m.Server:
    return m.Server(id=sid, name=f"vm-{sid}", project_id="p-alice", vm_state="active")


class FakeServers:
    def __init__(self) -> None:
        self.queries: list[ServerQuery] = []
        self.acts: list[tuple[Any, ...]] = []

    def page(self, ctx: AuthContext, query: ServerQuery, paginate: Any, detail: bool
             ) -> ServerPage:
        self.queries.append(query)
        rows, more = paginate([server("c"), server("b"), server("a")])
        return ServerPage(rows, more)

    def act(self, ctx: AuthContext, sid: str, name: str, reboot_type: str | None) -> None:
        self.acts.append((ctx.user_id, sid, name, reboot_type))


def test_server_listing_scopes_the_query_and_links_the_next_page() -> None:
    svc = fake_service(servers=FakeServers())
    got = servers.list_servers(request(
        "GET", "/v2.1/servers", query="all_tenants=1&deleted=true&marker=c&limit=1"), svc)
    assert [s["id"] for s in got["servers"]] == ["b"]
    assert got["servers_links"][0]["href"] == \
        "http://compute.test/v2.1/servers?limit=1&marker=b"
    query = svc.servers.queries[-1]  # a member: its own project, deleted ones not shown
    assert (query.project, query.all_projects, query.deleted) == ("p-alice", False, False)
    servers.list_servers(request("GET", "/v2.1/servers", query="all_tenants=1", ctx=ADMIN),
                         svc)
    assert svc.servers.queries[-1].all_projects is True
    with pytest.raises(BadRequest, match="Invalid filter 'colour'"):
        servers.list_servers(request("GET", "/v2.1/servers", query="colour=red"), svc)


def test_server_action_validates_the_body_then_calls_the_service() -> None:
    svc = fake_service(servers=FakeServers())
    path, params = "/v2.1/servers/s1/action", {"id": "s1"}
    with pytest.raises(BadRequest, match="There is no such action: fly"):
        server_actions.server_action(request("POST", path, params, body={"fly": None}), svc)
    with pytest.raises(BadRequest, match="Invalid input for reboot"):
        server_actions.server_action(request("POST", path, params, body={
            "reboot": {"type": "SOFTLY"}}), svc)
    assert svc.servers.acts == []
    resp = server_actions.server_action(request("POST", path, params, body={
        "reboot": {"type": "HARD"}}), svc)
    assert resp.status_code == 202
    server_actions.server_action(request("POST", path, params, body={"os-stop": None}), svc)
    assert svc.servers.acts == [("u-alice", "s1", "reboot", "HARD"),
                                ("u-alice", "s1", "os-stop", None)]
