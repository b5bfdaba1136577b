"""Image API: the projects a shared image is offered to (image members)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.image.core import ImageService

routes = Routes()


@routes.add("GET", "/v2/images/{image_id}/members")
def list_members(req: Req, svc: ImageService) -> dict[str, Any]:
    members = svc.list_members(req.ctx, req.params["image_id"])
    return {"members": members, "schema": "/v2/schemas/members"}


@routes.add("POST", "/v2/images/{image_id}/members")
def add_member(req: Req, svc: ImageService) -> dict[str, Any]:
    return svc.add_member(req.ctx, req.params["image_id"], req.body)


@routes.add("GET", "/v2/images/{image_id}/members/{member_id}")
def show_member(req: Req, svc: ImageService) -> dict[str, Any]:
    return svc.show_member(req.ctx, req.params["image_id"], req.params["member_id"])


@routes.add("PUT", "/v2/images/{image_id}/members/{member_id}")
def update_member(req: Req, svc: ImageService) -> dict[str, Any]:
    p = req.params
    return svc.update_member(req.ctx, p["image_id"], p["member_id"], req.body)


@routes.add("DELETE", "/v2/images/{image_id}/members/{member_id}")
def delete_member(req: Req, svc: ImageService) -> None:
    svc.delete_member(req.ctx, req.params["image_id"], req.params["member_id"])
