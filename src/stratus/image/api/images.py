"""Image API: the image records (list, create, show, update, delete) and the
deactivate/reactivate actions."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound, UnsupportedMediaType
from stratus.image import listing, views
from stratus.image.core import ImageService

routes = Routes()


@routes.add("GET", "/v2/images")
def list_images(req: Req, svc: ImageService) -> dict[str, Any]:
    return listing.list_images(svc, req.ctx, req.query)


@routes.add("POST", "/v2/images")
def create_image(req: Req, svc: ImageService) -> Response:
    img = svc.create(req.ctx, req.body)
    return JSONResponse(
        img, status_code=201, headers={"Location": f"{req.base_url}/v2/images/{img['id']}"}
    )


@routes.add("GET", "/v2/images/{image_id}")
def show_image(req: Req, svc: ImageService) -> dict[str, Any]:
    return svc.show(req.ctx, req.params["image_id"])


@routes.add("PATCH", "/v2/images/{image_id}")
def update_image(req: Req, svc: ImageService) -> dict[str, Any]:
    media = req.header("content-type").split(";")[0].strip().lower()
    if media not in views.PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Image updates must be sent as Content-Type: {views.PATCH_MEDIA_TYPE} "
            f"(or the older {views.PATCH_MEDIA_TYPE_2_0}), not {media or 'no Content-Type'}."
        )
    return svc.update(req.ctx, req.params["image_id"], req.body, media)


@routes.add("DELETE", "/v2/images/{image_id}")
def delete_image(req: Req, svc: ImageService) -> None:
    svc.delete(req.ctx, req.params["image_id"])


@routes.add("POST", "/v2/images/{image_id}/actions/deactivate", body=False)
def deactivate(req: Req, svc: ImageService) -> None:
    svc.set_active(req.ctx, req.params["image_id"], active=False)


@routes.add("POST", "/v2/images/{image_id}/actions/reactivate", body=False)
def reactivate(req: Req, svc: ImageService) -> None:
    svc.set_active(req.ctx, req.params["image_id"], active=True)


@routes.add(("GET", "DELETE", "PATCH"), "/v2/images/", body=False)
def empty_image_id(req: Req, svc: ImageService) -> None:
    """``/v2/images/`` (an empty image id, as Glance's router sees it) is a 404, not a
    redirect to the list (which would turn a DELETE into a 405)."""
    raise NotFound("No image id was given: use /v2/images/{image_id} (or /v2/images to list).")
