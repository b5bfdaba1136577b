"""Server metadata: list, merge, replace, and one item (show, set, delete)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/servers/{id}/metadata"
Change = Callable[[dict[str, str]], tuple[Any, dict[str, str]]]


def change_metadata(req: Req, svc: ComputeCore, change: Change) -> Any:
    svc.require_member(req.ctx, "os_compute_api:server-metadata")
    return svc.servers.change_metadata(req.ctx, req.params["id"], change)


@routes.add("GET", P)
def list_metadata(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return {"metadata": svc.servers.metadata(req.ctx, req.params["id"])}


@routes.add("POST", P)
def merge_metadata(req: Req, svc: ComputeCore) -> Any:
    new = views.metadata(views.obj(req.body, "metadata") if isinstance(req.body, dict)
                         else None, -1)
    return change_metadata(req, svc, lambda cur: ({"metadata": {**cur, **new}},
                                                  {**cur, **new}))


@routes.add("PUT", P)
def replace_metadata(req: Req, svc: ComputeCore) -> Any:
    new = views.metadata(views.obj(req.body, "metadata"), -1)
    return change_metadata(req, svc, lambda cur: ({"metadata": new}, new))


@routes.add("GET", P + "/{key}")
def show_metadata_item(req: Req, svc: ComputeCore) -> dict[str, Any]:
    meta = svc.servers.metadata(req.ctx, req.params["id"])
    if req.params["key"] not in meta:
        raise NotFound("Metadata item was not found")
    return {"meta": {req.params["key"]: meta[req.params["key"]]}}


@routes.add("PUT", P + "/{key}")
def set_metadata_item(req: Req, svc: ComputeCore) -> Any:
    item = views.metadata(views.obj(req.body, "meta"), -1)
    key = req.params["key"]
    if list(item) != [key]:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the "
                         "key of the URI.")
    return change_metadata(req, svc, lambda cur: ({"meta": item}, {**cur, **item}))


@routes.add("DELETE", P + "/{key}")
def delete_metadata_item(req: Req, svc: ComputeCore) -> None:
    key = req.params["key"]

    def without(cur: dict[str, str]) -> tuple[None, dict[str, str]]:
        if key not in cur:
            raise NotFound("Metadata item was not found")
        cur.pop(key)
        return None, cur

    change_metadata(req, svc, without)
