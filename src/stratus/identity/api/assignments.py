"""Identity API: role grants (``/v3/{projects,domains}/{id}/{users,groups}/{id}/roles``,
``/v3/system/{users,groups}/{id}/roles``) and ``/v3/role_assignments``.

The grant handlers serve the four actor/target combinations; each route binds
its ``Grant`` (which actor kind on which target kind) as a keyword argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.assignments import FILTERS, SYSTEM_ID
from stratus.identity.core import Identity

routes = Routes()


@dataclass(frozen=True)
class Grant:
    """One actor/target combination, e.g. Grant("User", "Project")."""

    actor: str
    target: str

    @property
    def action(self) -> str:
        """The policy action's stem, e.g. ``user_project_grant``."""
        return f"{self.actor.lower()}_{self.target.lower()}_grant"

    def path(self, target_id: str, actor_id: str) -> str:
        if self.target == "System":
            return f"/v3/system/{self.actor.lower()}s/{actor_id}/roles"
        return f"/v3/{self.target.lower()}s/{target_id}/{self.actor.lower()}s/{actor_id}/roles"


def _target(req: Req) -> str:
    """The target id in the path; a system route has none (there is one system)."""
    return req.params.get("target_id", SYSTEM_ID)


def list_grants(req: Req, svc: Identity, grant: Grant) -> dict[str, Any]:
    admin(req, f"list_{grant.action}s")
    p = req.params
    tid, aid, roles = svc.assignments.roles_granted(
        grant.actor, grant.target, _target(req), p["actor_id"]
    )
    items = [views.role(req.base_url, r) for r in roles]
    return views.collection(req.base_url, grant.path(tid, aid), "roles", items)


def create_grant(req: Req, svc: Identity, grant: Grant) -> None:
    admin(req, f"create_{grant.action}")
    p = req.params
    svc.assignments.grant(grant.actor, grant.target, _target(req), p["actor_id"], p["role_id"])


def check_grant(req: Req, svc: Identity, grant: Grant) -> None:
    admin(req, f"check_{grant.action}")
    p = req.params
    svc.assignments.check(grant.actor, grant.target, _target(req), p["actor_id"], p["role_id"])


def revoke_grant(req: Req, svc: Identity, grant: Grant) -> None:
    admin(req, f"revoke_{grant.action}")
    p = req.params
    svc.assignments.revoke(grant.actor, grant.target, _target(req), p["actor_id"], p["role_id"])


def _bound(handler: Callable[..., Any], grant: Grant) -> Callable[..., Any]:
    """``handler`` with ``grant`` filled in, named after both (e.g. list_grants_UserProject)."""
    bound = functools.update_wrapper(functools.partial(handler, grant=grant), handler)
    bound.__name__ = f"{handler.__name__}_{grant.actor}{grant.target}"
    return bound


for _grant in (Grant(a, t) for t in ("Project", "Domain", "System") for a in ("User", "Group")):
    _base = _grant.path("{target_id}", "{actor_id}")
    routes.add("GET", _base)(_bound(list_grants, _grant))
    routes.add("PUT", f"{_base}/{{role_id}}", status=204, body=False)(
        _bound(create_grant, _grant)
    )
    routes.add("HEAD", f"{_base}/{{role_id}}")(_bound(check_grant, _grant))
    routes.add("GET", f"{_base}/{{role_id}}")(_bound(check_grant, _grant))
    routes.add("DELETE", f"{_base}/{{role_id}}")(_bound(revoke_grant, _grant))


@routes.add("GET", "/v3/role_assignments")
def role_assignments(req: Req, svc: Identity) -> dict[str, Any]:
    q = req.query
    ctx = req.ctx
    if not ctx.is_admin and q.get("user.id") != ctx.user_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: "
            "identity:list_role_assignments (a user may list only their own, "
            "with user.id=<own id>)."
        )
    effective = "effective" in q
    include_names = views.query_bool(q.get("include_names"), "include_names") or False
    if effective and "group.id" in q:
        raise BadRequest("'effective' and 'group.id' cannot be combined.")
    scopes = [k for k in ("scope.project.id", "scope.domain.id", "scope.system") if k in q]
    if len(scopes) > 1:
        raise BadRequest("Give at most one of scope.project.id, scope.domain.id and "
                         "scope.system.")
    if "scope.system" in q and q["scope.system"] != "all":
        raise BadRequest("scope.system takes one value: all.")
    filters = {k: q[k] for k in FILTERS if k in q}
    rows, names = svc.assignments.listing(filters, effective, include_names)
    items = [views.role_assignment(req.base_url, r, names) for r in rows]
    return views.collection(req.base_url, "/v3/role_assignments", "role_assignments", items)
