"""Identity API: /v3/projects."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden
from stratus.identity import views
from stratus.identity.api.access import admin, default_domain
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/projects")
def list_projects(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_projects")
    filters = {k: req.query[k] for k in ("name", "domain_id", "parent_id") if k in req.query}
    enabled = views.query_bool(req.query.get("enabled"), "enabled")
    if views.query_bool(req.query.get("is_domain"), "is_domain"):
        return views.collection(req.base_url, "/v3/projects", "projects", [])
    items = [views.project(req.base_url, p) for p in svc.projects.find(filters, enabled)]
    return views.collection(req.base_url, "/v3/projects", "projects", items)


@routes.add("POST", "/v3/projects", status=201)
def create_project(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_project")
    obj = views.entity(req.body, "project")
    name = views.text(obj, "name", required=True, max_len=64)
    if views.boolean(obj, "is_domain", False):
        raise BadRequest("Projects acting as domains (is_domain=true) are not supported.")
    parent_id = views.text(obj, "parent_id", max_len=64)
    domain_id = views.text(obj, "domain_id", max_len=64)
    proj = svc.projects.create(name, parent_id, domain_id, default_domain(req), obj)
    return {"project": views.project(req.base_url, proj)}


@routes.add("GET", "/v3/projects/{project_id}")
def show_project(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    pid = req.params["project_id"]
    if not ctx.is_admin and ctx.project_id != pid:
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:get_project."
        )
    return {"project": views.project(req.base_url, svc.projects.show(pid))}


@routes.add("PATCH", "/v3/projects/{project_id}")
def update_project(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_project")
    obj = views.entity(req.body, "project")
    if "domain_id" in obj:
        raise BadRequest("A project cannot be moved to another domain.")
    proj = svc.projects.update(req.params["project_id"], obj)
    return {"project": views.project(req.base_url, proj)}


@routes.add("DELETE", "/v3/projects/{project_id}")
def delete_project(req: Req, svc: Identity) -> None:
    admin(req, "delete_project")
    svc.projects.delete(req.params["project_id"])
