"""Server groups: list, show, create (one policy; the soft ones from microversion 2.15),
delete."""

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
    out = {"id": g.id, "name": g.name, "policies": [g.policy], "members": list(g.members),
           "metadata": {}}
    if views.mv(req) >= (2, 13):
        out.update({"project_id": g.project_id, "user_id": g.user_id})
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
    views.only(data, {"name", "policies"}, "server_group")
    name = views.text(data, "name", required=True)
    assert name is not None
    pols = data.get("policies")
    allowed = POLICIES if views.mv(req) >= (2, 15) else {"affinity", "anti-affinity"}
    if not isinstance(pols, list) or len(pols) != 1 or not isinstance(pols[0], str) \
            or pols[0] not in allowed:
        raise BadRequest(f"Invalid input for field/attribute policies: exactly one of "
                         f"{', '.join(sorted(allowed))} is expected.")
    return {"server_group": group_view(req, svc.server_groups.create(req.ctx, name, pols[0]))}


@routes.add("DELETE", "/v2.1/os-server-groups/{id}")
def delete_server_group(req: Req, svc: ComputeCore) -> None:
    svc.require_member(req.ctx, "os_compute_api:os-server-groups:delete")
    svc.server_groups.delete(req.ctx, req.params["id"])
