"""Image API: adding and removing an image's tags."""

from __future__ import annotations

from stratus.common.app import Req, Routes
from stratus.image.core import ImageService

routes = Routes()


@routes.add("PUT", "/v2/images/{image_id}/tags/{tag}", body=False)
def add_tag(req: Req, svc: ImageService) -> None:
    svc.add_tag(req.ctx, req.params["image_id"], req.params["tag"])


@routes.add("DELETE", "/v2/images/{image_id}/tags/{tag}")
def remove_tag(req: Req, svc: ImageService) -> None:
    svc.remove_tag(req.ctx, req.params["image_id"], req.params["tag"])
