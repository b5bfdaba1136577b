"""Identity API: what the caller's token can reach — /v3/auth/catalog,
/v3/auth/projects and /v3/auth/domains."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import Forbidden
from stratus.identity import views
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/auth/catalog")
def auth_catalog(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    if not (ctx.project_id or ctx.domain_id or ctx.system):
        raise Forbidden("An unscoped token has no catalog; ask for a scoped token.")
    catalog = svc.service_catalog(ctx.project_id)
    return {"catalog": catalog, "links": {"self": f"{req.base_url}/v3/auth/catalog"}}


@routes.add("GET", "/v3/auth/projects")
def auth_projects(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    items = [views.project(req.base_url, p) for p in svc.assignments.projects_for(ctx.user_id)]
    return views.collection(req.base_url, "/v3/auth/projects", "projects", items)


@routes.add("GET", "/v3/auth/domains")
def auth_domains(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    items = [views.domain(req.base_url, d) for d in svc.assignments.domains_for(ctx.user_id)]
    return views.collection(req.base_url, "/v3/auth/domains", "domains", items)
