"""Nova's image proxy: /v2.1/images (list, detail, show, delete) up to microversion 2.35,
/v2.1/images/{id}/metadata (list, merge, replace, and one item: show, set, delete) up to
2.38; a 404 after those, as Nova answers ("the proxy APIs are removed"). Any
authenticated caller; the image API decides with the caller's token
(compute/images_proxy.py)."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from stratus.common.app import Req, Routes
from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import image_views, views
from stratus.compute.core import ComputeCore
from stratus.compute.images_proxy import parse_query

routes = Routes()
P = "/v2.1/images"
M = P + "/{id}/metadata"
KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def proxy_caller(req: Req, last: tuple[int, int]) -> AuthContext:
    """The authenticated caller, if the microversion still has the route (up to
    ``last``)."""
    ctx = req.ctx
    if views.mv(req) > last:
        raise NotFound(f"The image proxy APIs are gone after microversion "
                       f"{views.version_text(last)}; use the image API.")
    return ctx


def images_caller(req: Req) -> AuthContext:
    return proxy_caller(req, (2, 35))


def metadata_caller(req: Req) -> AuthContext:
    return proxy_caller(req, (2, 38))


def metadata_body(body: Any, key: str) -> dict[str, str]:
    """``{key: {name: value, ...}}`` and nothing else; names of 1 to 255 letters, digits
    and ``-_:. ``, values strings of at most 255 characters."""
    if isinstance(body, dict):
        views.only(body, {key}, "the request body")
    meta = views.metadata(views.obj(body, key), -1, key)
    for name in meta:
        if not KEY.match(name):
            raise BadRequest(f"Invalid input for field/attribute {key}: {name!r} is not a "
                             "valid key (1 to 255 letters, digits, spaces or -_:.).")
    return meta


def _list(req: Req, svc: ComputeCore, detail: bool) -> dict[str, Any]:
    ctx = images_caller(req)
    query = parse_query(dict(req.query))
    images, full = svc.images.list(ctx, query)
    return image_views.listing(req, images, full, detail, svc.images.image_url)


@routes.add("GET", P)
def list_images(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return _list(req, svc, False)


@routes.add("GET", P + "/detail")
def list_images_detail(req: Req, svc: ComputeCore) -> dict[str, Any]:
    return _list(req, svc, True)


@routes.add("GET", P + "/{id}")
def show_image(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = images_caller(req)
    img = svc.images.get(ctx, req.params["id"])
    return {"image": image_views.image(req, img, svc.images.image_url)}


@routes.add("DELETE", P + "/{id}", status=204)
def delete_image(req: Req, svc: ComputeCore) -> Response:
    ctx = images_caller(req)
    svc.images.delete(ctx, req.params["id"])
    return Response(status_code=204)


@routes.add("DELETE", P)
def delete_no_image(req: Req, svc: ComputeCore) -> Response:
    """``DELETE /v2.1/images/`` (a blank id): no such image, as Nova answers."""
    images_caller(req)
    raise NotFound("Image not found.")


@routes.add("GET", M)
def list_metadata(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = metadata_caller(req)
    return {"metadata": svc.images.metadata(ctx, req.params["id"])}


@routes.add("POST", M)
def merge_metadata(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = metadata_caller(req)
    new = metadata_body(req.body, "metadata")
    return {"metadata": svc.images.change_metadata(ctx, req.params["id"],
                                                   lambda cur: (new, set()))}


@routes.add("PUT", M)
def replace_metadata(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = metadata_caller(req)
    new = metadata_body(req.body, "metadata")
    svc.images.change_metadata(ctx, req.params["id"],
                               lambda cur: (new, set(cur) - set(new)))
    return {"metadata": new}


@routes.add("GET", M + "/{key}")
def show_metadata_item(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = metadata_caller(req)
    meta = svc.images.metadata(ctx, req.params["id"])
    key = req.params["key"]
    if key not in meta:
        raise NotFound(f"Image metadata item {key!r} was not found.")
    return {"meta": {key: meta[key]}}


@routes.add("PUT", M + "/{key}")
def set_metadata_item(req: Req, svc: ComputeCore) -> dict[str, Any]:
    ctx = metadata_caller(req)
    item = metadata_body(req.body, "meta")
    key = req.params["key"]
    if list(item) != [key]:
        raise BadRequest("Request body and URI mismatch: the body's 'meta' must hold "
                         "exactly the key of the URI.")
    svc.images.change_metadata(ctx, req.params["id"], lambda cur: (item, set()))
    return {"meta": item}


@routes.add("DELETE", M + "/{key}", status=204)
def delete_metadata_item(req: Req, svc: ComputeCore) -> Response:
    ctx = metadata_caller(req)
    key = req.params["key"]

    def without(cur: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
        if key not in cur:
            raise NotFound(f"Invalid metadata key {key!r}: the image has no such item.")
        return {}, {key}

    svc.images.change_metadata(ctx, req.params["id"], without)
    return Response(status_code=204)
