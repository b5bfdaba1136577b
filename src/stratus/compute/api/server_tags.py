"""Server tags (2.26; 404 below it, as Nova): list, replace, delete all, and one tag
(check, add, delete). The rules and the storage are in compute/server_tags.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import server_tags as tags
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/servers/{id}/tags"


def _since_2_26(req: Req) -> None:
    if views.mv(req) < (2, 26):
        raise NotFound("Server tags are available from microversion 2.26.")


def _change(req: Req, svc: ComputeCore, action: str) -> None:
    _since_2_26(req)
    svc.require_member(req.ctx, f"os_compute_api:os-server-tags:{action}")


def _location(req: Req, tag: str) -> dict[str, str]:
    return {"Location": f"{views.root(req)}/v2.1/servers/{req.params['id']}/tags/"
                        f"{quote(tag, safe='')}"}


@routes.add("GET", P)
def list_tags(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _since_2_26(req)
    return {"tags": tags.tags_of(svc, req.ctx, req.params["id"])}


@routes.add("PUT", P)
def replace_tags(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _change(req, svc, "update_all")
    if not isinstance(req.body, dict) or set(req.body) != {"tags"}:
        raise BadRequest("Invalid input: the body must be {\"tags\": [...]}.")
    new = tags.check_tag_list(req.body["tags"])
    return {"tags": tags.change_tags(svc, req.ctx, req.params["id"], lambda _cur: new,
                                     "update tags")}


@routes.add("DELETE", P)
def delete_all_tags(req: Req, svc: ComputeCore) -> None:
    _change(req, svc, "delete_all")
    tags.change_tags(svc, req.ctx, req.params["id"], lambda _cur: [], "delete tags")


@routes.add("GET", P + "/{tag}")
def check_tag(req: Req, svc: ComputeCore) -> None:
    _since_2_26(req)
    tag = req.params["tag"]
    if tag not in tags.tags_of(svc, req.ctx, req.params["id"]):
        raise NotFound(f"Tag {tag} is not found on instance {req.params['id']}.")


@routes.add("PUT", P + "/{tag}", body=False)  # Nova reads no body
def add_tag(req: Req, svc: ComputeCore) -> Response:
    _change(req, svc, "update")
    tag = tags.check_tag(req.params["tag"])
    added: list[bool] = []

    def add(cur: list[str]) -> list[str]:
        if tag in cur:
            return cur
        if len(cur) >= tags.MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit "
                             f"{tags.MAX_TAGS}: the server has {len(cur)}.")
        added.append(True)
        return [*cur, tag]

    tags.change_tags(svc, req.ctx, req.params["id"], add, "update tag")
    if added:
        return Response(status_code=201, headers=_location(req, tag))
    return Response(status_code=204, headers=_location(req, tag))


@routes.add("DELETE", P + "/{tag}")
def delete_tag(req: Req, svc: ComputeCore) -> None:
    _change(req, svc, "delete")
    tag = req.params["tag"]

    def remove(cur: list[str]) -> list[str]:
        if tag not in cur:
            raise NotFound(f"Tag {tag} is not found on instance {req.params['id']}.")
        return [t for t in cur if t != tag]

    tags.change_tags(svc, req.ctx, req.params["id"], remove, "delete tag")
