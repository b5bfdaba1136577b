"""Identity API: /v3/domains."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import Forbidden
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity

routes = Routes()


@routes.add("GET", "/v3/domains")
def list_domains(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "list_domains")
    filters = {k: req.query[k] for k in ("name",) if k in req.query}
    enabled = views.query_bool(req.query.get("enabled"), "enabled")
    items = [views.domain(req.base_url, d) for d in svc.domains.find(filters, enabled)]
    return views.collection(req.base_url, "/v3/domains", "domains", items)


@routes.add("POST", "/v3/domains", status=201)
def create_domain(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "create_domain")
    obj = views.entity(req.body, "domain")
    name = views.text(obj, "name", required=True, max_len=64)
    assert name is not None
    return {"domain": views.domain(req.base_url, svc.domains.create(name, obj))}


@routes.add("GET", "/v3/domains/{domain_id}")
def show_domain(req: Req, svc: Identity) -> dict[str, Any]:
    ctx = req.ctx
    did = req.params["domain_id"]
    if not ctx.is_admin and did not in (ctx.domain_id, ctx.project_domain_id):
        raise Forbidden(
            "You are not authorized to perform the requested action: identity:get_domain."
        )
    return {"domain": views.domain(req.base_url, svc.domains.show(did))}


@routes.add("PATCH", "/v3/domains/{domain_id}")
def update_domain(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_domain")
    obj = views.entity(req.body, "domain")
    return {"domain": views.domain(req.base_url, svc.domains.update(req.params["domain_id"], obj))}


@routes.add("DELETE", "/v3/domains/{domain_id}")
def delete_domain(req: Req, svc: Identity) -> None:
    admin(req, "delete_domain")
    svc.domains.delete(req.params["domain_id"])
