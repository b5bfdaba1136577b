"""Identity API: /v3/projects/{project_id}/tags (a project's tags one by one or
all at once). Anyone scoped to the project, or an admin, reads them; admins
change them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, Forbidden, NotFound
from stratus.identity import views
from stratus.identity.api.access import admin
from stratus.identity.core import Identity

routes = Routes()
BASE = "/v3/projects/{project_id}/tags"


def _reader(req: Req, action: str) -> None:
    ctx = req.ctx
    if not ctx.is_admin and ctx.project_id != req.params["project_id"]:
        raise Forbidden(f"You are not authorized to perform the requested action: "
                        f"identity:{action}.")


def _tag(raw: str) -> str:
    if not raw or len(raw) > 255 or "," in raw or "/" in raw:
        raise BadRequest("A tag is 1 to 255 characters without ',' or '/'.")
    return raw


@routes.add("GET", BASE)
def list_tags(req: Req, svc: Identity) -> dict[str, Any]:
    _reader(req, "list_project_tags")
    return {"tags": svc.projects.tags(req.params["project_id"])}


@routes.add("PUT", BASE)
def replace_tags(req: Req, svc: Identity) -> dict[str, Any]:
    admin(req, "update_project_tags")
    body = req.body
    tags = views.tags(body if isinstance(body, dict) else {})
    if tags is None:
        raise BadRequest("The request body must be {'tags': ['...', ...]}.")
    tags = [_tag(t) for t in tags]
    return {"tags": svc.projects.change_tags(req.params["project_id"], replace=tags)}


@routes.add("DELETE", BASE)
def delete_tags(req: Req, svc: Identity) -> None:
    admin(req, "delete_project_tags")
    svc.projects.change_tags(req.params["project_id"], replace=[])


@routes.add("GET", BASE + "/{tag}")
def check_tag(req: Req, svc: Identity) -> Response:
    _reader(req, "get_project_tag")
    if req.params["tag"] not in svc.projects.tags(req.params["project_id"]):
        raise NotFound(f"Tag {req.params['tag']!r} not found for project "
                       f"{req.params['project_id']}.")
    return Response(status_code=204)


@routes.add("PUT", BASE + "/{tag}", body=False)
def add_tag(req: Req, svc: Identity) -> Response:
    admin(req, "create_project_tag")
    svc.projects.change_tags(req.params["project_id"], add=[_tag(req.params["tag"])])
    return Response(status_code=201, headers={
        "Location": f"{req.base_url}/v3/projects/{req.params['project_id']}/tags/"
                    f"{req.params['tag']}"})


@routes.add("DELETE", BASE + "/{tag}")
def delete_tag(req: Req, svc: Identity) -> None:
    admin(req, "delete_project_tag")
    svc.projects.change_tags(req.params["project_id"], remove=req.params["tag"])
