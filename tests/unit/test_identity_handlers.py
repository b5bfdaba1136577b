"""Identity API handlers called directly with a fake service: no app, no database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from stratus.common.app import Req
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Forbidden
from stratus.identity import models as m
from stratus.identity.api import assignments, users
from stratus.identity.security import SecurityRules

pytestmark = pytest.mark.unit

ADMIN = AuthContext(user_id="admin-id", project_id="p1", project_domain_id="default",
                    roles=frozenset({"admin", "member"}))
ALICE = AuthContext(user_id="alice-id", project_id="p2", project_domain_id="d2",
                    roles=frozenset({"member"}))


def make_req(ctx: AuthContext, path_params: dict[str, str] | None = None,
             body: Any = None, query: bytes = b"") -> Req:
    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": query,
        "headers": [(b"host", b"identity.test:5000")], "scheme": "http",
        "path_params": path_params or {},
        "app": SimpleNamespace(state=SimpleNamespace(public_url="http://identity.test:5000")),
    }
    return Req(Request(scope), body, _ctx=ctx)


class FakeUsers:
    def __init__(self) -> None:
        self.created: list[tuple[Any, ...]] = []

    def create(self, name: str | None, password: str | None, domain_id: str,
               obj: dict[str, Any]) -> m.User:
        self.created.append((name, password, domain_id))
        return m.User(id="u-new", name=name, domain_id=domain_id, enabled=True, extra={},
                      description=None, default_project_id=None)

    def groups(self, user_id: str) -> list[m.Group]:
        return [m.Group(id="g1", name="ops", domain_id="default", description="")]


def test_create_user_validates_then_renders_what_the_service_made() -> None:
    fake = SimpleNamespace(users=FakeUsers(), security=SecurityRules())
    body = {"user": {"name": " bob ", "password": "s3cret"}}
    out = users.create_user(make_req(ADMIN, body=body), fake)
    # The handler trims the name, keeps the password for the service, and takes
    # the caller's domain when the body names none.
    assert fake.users.created == [("bob", "s3cret", "default")]
    assert out["user"]["id"] == "u-new"
    assert out["user"]["links"] == {"self": "http://identity.test:5000/v3/users/u-new"}
    with pytest.raises(BadRequest, match="'password' must be a non-empty string"):
        users.create_user(make_req(ADMIN, body={"user": {"name": "x", "password": ""}}), fake)
    with pytest.raises(Forbidden):
        users.create_user(make_req(ALICE, body=body), fake)
    assert len(fake.users.created) == 1


def test_a_user_may_list_only_their_own_groups() -> None:
    fake = SimpleNamespace(users=FakeUsers())
    out = users.user_groups(make_req(ALICE, {"user_id": "alice-id"}), fake)
    assert [g["name"] for g in out["groups"]] == ["ops"]
    assert out["links"]["self"] == "http://identity.test:5000/v3/users/alice-id/groups"
    with pytest.raises(Forbidden, match="identity:list_groups_for_user"):
        users.user_groups(make_req(ALICE, {"user_id": "bob-id"}), fake)


def test_role_assignments_hands_only_known_filters_to_the_service() -> None:
    seen: list[tuple[Any, ...]] = []

    def listing(filters: dict[str, str], effective: bool, include_names: bool) -> Any:
        seen.append((filters, effective, include_names))
        row = m.Assignment(type="UserProject", actor_id="alice-id", target_id="p2", role_id="r1")
        return [row], {"r1": {"name": "member"}}

    fake = SimpleNamespace(assignments=SimpleNamespace(listing=listing))
    req = make_req(ALICE, query=b"user.id=alice-id&effective&include_names&other=1")
    out = assignments.role_assignments(req, fake)
    assert seen == [({"user.id": "alice-id"}, True, True)]
    assert out["role_assignments"] == [{
        "role": {"id": "r1", "name": "member"},
        "user": {"id": "alice-id"},
        "scope": {"project": {"id": "p2"}},
        "links": {"assignment": "http://identity.test:5000/v3/projects/p2/users/alice-id/roles/r1"},
    }]
    with pytest.raises(BadRequest, match=r"'effective' and 'group\.id' cannot be combined"):
        assignments.role_assignments(
            make_req(ADMIN, query=b"effective&group.id=g1"), fake
        )
