"""Project > Volumes: volumes and snapshots (when the cloud has a volume API)."""

from __future__ import annotations

from starlette.responses import Response

from stratus.common.app import Routes
from stratus.dashboard.web import Page, check_id, page

routes = Routes()


@routes.add("GET", "/project/volumes/")
@page
def list_volumes(ctx: Page) -> Response:
    if not ctx.api.has("volume"):
        return ctx.render("volumes.html", section="volumes", available=False,
                          volumes=[], snapshots=[])
    return ctx.render("volumes.html", section="volumes", available=True,
                      **ctx.svc.core.volumes(ctx.api))


@routes.add("POST", "/project/volumes/create")
@page
def create_volume(ctx: Page) -> Response:
    ctx.svc.core.create_volume(ctx.api, ctx.field("name", required=True),
                               ctx.int_field("size", 1, 16384, default=1))
    ctx.flash("info", "Volume requested.")
    return ctx.redirect("/project/volumes/")


@routes.add("POST", "/project/volumes/{volume_id}/delete")
@page
def delete_volume(ctx: Page) -> Response:
    ctx.svc.core.delete_volume(ctx.api, check_id(ctx.request.path_params["volume_id"],
                                                 "volume"))
    ctx.flash("info", "Volume deletion requested.")
    return ctx.redirect("/project/volumes/")
