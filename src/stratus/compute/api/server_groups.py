"""Server groups: list, show, create (one policy; the soft ones from microversion 2.15;
from 2.64 ``policy`` and ``rules`` instead of ``policies``), delete."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.auth import require_project_scope
from stratus.common.errors import BadRequest
from stratus.compute import models as m
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.server_groups import POLICIES

routes = Routes()


def group_view(req: Req, g: m.ServerGroup) -> dict[str, Any]:
    """A server group as Nova shows it (its project and user from 2.13)."""
    out: dict[str, Any] = {"id": g.id, "name": g.name, "policies": [g.policy],
                           "members": list(g.members), "metadata": {}}
    if views.mv(req) >= (2, 13):
        out.update({"project_id": g.project_id, "user_id": g.user_id})
    if views.mv(req) >= (2, 64):
        del out["policies"], out["metadata"]
        # anti-affinity keeps one member per host: Nova's max_server_per_host of 1
        out.update({"policy": g.policy, "rules": {"max_server_per_host": 1}
                    if g.policy == "anti-affinity" else {}})
    return out


@routes.add("GET", "/v2.1/os-server-groups")
def list_server_groups(req: Req, svc: ComputeCore) -> dict[str, Any]:
    all_projects = req.query.get("all_projects", "").lower() in ("true", "1")
    rows = [group_view(req, g) for g in svc.server_groups.visible(req.ctx, all_projects)]
    offset = views.integer({"offset": req.query.get("offset", 0)}, "offset")
    rows = rows[offset:]
    limit = views.LISTER.limit(req.query)
    if limit is not None:
        rows = rows[:limit]
    return {"server_groups": rows}


@routes.add("GET", "/v2.1/os-server-groups/{id}")
def show_server_group(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"server_group": group_view(req, svc.server_groups.show(req.ctx, req.params["id"]))}


@routes.add("POST", "/v2.1/os-server-groups")
def create_server_group(req: Req, svc: ComputeCore) -> dict[str, Any]:
    svc.require_member(req.ctx, "os_compute_api:os-server-groups:create")
    require_project_scope(req.ctx, "os_compute_api:os-server-groups:create")
    data = views.obj(req.body, "server_group")
    new = views.mv(req) >= (2, 64)
    views.only(data, {"name", "policy", "rules"} if new else {"name", "policies"},
               "server_group")
    name = views.text(data, "name", required=True)
    assert name is not None
    if new:
        return {"server_group": group_view(req, svc.server_groups.create(
            req.ctx, name, policy_264(data)))}
    pols = data.get("policies")
    allowed = POLICIES if views.mv(req) >= (2, 15) else {"affinity", "anti-affinity"}
    if not isinstance(pols, list) or len(pols) != 1 or not isinstance(pols[0], str) \
            or pols[0] not in allowed:
        raise BadRequest(f"Invalid input for field/attribute policies: exactly one of "
                         f"{', '.join(sorted(allowed))} is expected.")
    return {"server_group": group_view(req, svc.server_groups.create(req.ctx, name, pols[0]))}


def policy_264(data: dict[str, Any]) -> str:
    """2.64's ``policy`` (one of four) and ``rules``: only anti-affinity takes one,
    ``max_server_per_host``, and Stratus keeps one server per host (1)."""
    policy = data.get("policy")
    if policy not in POLICIES:
        raise BadRequest(f"Invalid input for field/attribute policy: {policy!r} is not one of "
                         f"{', '.join(sorted(POLICIES))}.")
    rules = data.get("rules", {})
    if not isinstance(rules, dict) or set(rules) - {"max_server_per_host"}:
        raise BadRequest("Invalid input for field/attribute rules: only "
                         "{\"max_server_per_host\": <int>} is allowed.")
    if rules and policy != "anti-affinity":
        raise BadRequest("Only anti-affinity policy supports rules.")
    if "max_server_per_host" in rules:
        n = views.integer(rules, "max_server_per_host", minimum=1)
        if n != 1:
            raise BadRequest("max_server_per_host greater than 1 is not supported: Stratus's "
                             "anti-affinity keeps one server of the group per host.")
    return str(policy)


@routes.add("DELETE", "/v2.1/os-server-groups/{id}")
def delete_server_group(req: Req, svc: ComputeCore) -> None:
    svc.require_member(req.ctx, "os_compute_api:os-server-groups:delete")
    svc.server_groups.delete(req.ctx, req.params["id"])
