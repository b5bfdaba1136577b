"""Project > Images: the list, upload (the record first, then the bytes streamed
through to the image API while the page's progress bar moves), delete."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.dashboard.cloud import ApiFailure
from stratus.dashboard.sessions import CSRF_HEADER, SESSION_COOKIE
from stratus.dashboard.web import Dashboard, FormError, Page, check_id, page

routes = Routes()
VISIBILITIES = ("private", "shared", "community", "public")
DISK_FORMATS = ("qcow2", "raw", "iso", "vmdk", "vdi", "vhd", "vhdx", "ami", "ari", "aki")


@routes.add("GET", "/project/images/")
@page
def list_images(ctx: Page) -> Response:
    return ctx.render("images.html", section="images", images=ctx.svc.core.images(ctx.api),
                      disk_formats=DISK_FORMATS, visibilities=VISIBILITIES)


@routes.add("POST", "/project/images/create.json")
@page
def create_image(ctx: Page) -> Response:
    """The image record the upload goes into (the page's script calls it)."""
    fmt = ctx.field("disk_format", default="qcow2")
    if fmt not in DISK_FORMATS:
        raise FormError(f"Disk format {fmt!r} is not one of {', '.join(DISK_FORMATS)}.")
    visibility = ctx.field("visibility", default="private")
    if visibility not in VISIBILITIES:
        raise FormError(f"Visibility must be one of {', '.join(VISIBILITIES)}.")
    image = ctx.svc.core.create_image(ctx.api, ctx.field("name", required=True), fmt,
                                      visibility)
    return JSONResponse({"id": image["id"]}, status_code=201)


@routes.add("PUT", "/project/images/{image_id}/data")
async def upload_image(req: Req, svc: Dashboard) -> Response:
    """Stream the request body to the image API as it arrives (the CSRF token comes in
    the X-CSRF-Token header; the body is the file)."""
    request = req.request
    session = svc.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return JSONResponse({"error": "Not signed in, or the session has ended."}, 401)
    if not session.check_csrf(request.headers.get(CSRF_HEADER)):
        return JSONResponse({"error": "The upload was refused: its CSRF token is missing "
                             "or wrong."}, 403)
    try:
        image_id = check_id(request.path_params["image_id"], "image")
        api = svc.cloud.user_api(session.token, session.catalog)
        await svc.core.upload_image(api, image_id, request.stream(),
                                    request.headers.get("content-length"))
    except FormError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    except ApiFailure as exc:
        return JSONResponse({"error": exc.message}, exc.status if exc.status >= 400 else 502)
    return JSONResponse({"id": image_id})


@routes.add("POST", "/project/images/{image_id}/edit")
@page
def edit_image(ctx: Page) -> Response:
    visibility = ctx.field("visibility", default="private")
    if visibility not in VISIBILITIES:
        raise FormError(f"Visibility must be one of {', '.join(VISIBILITIES)}.")
    ctx.svc.core.update_image(ctx.api, check_id(ctx.request.path_params["image_id"], "image"),
                              ctx.field("name", required=True), visibility)
    ctx.flash("info", "Image updated.")
    return ctx.redirect("/project/images/")


@routes.add("POST", "/project/images/{image_id}/delete")
@page
def delete_image(ctx: Page) -> Response:
    ctx.svc.core.delete_image(ctx.api, check_id(ctx.request.path_params["image_id"], "image"))
    ctx.flash("info", "Image deleted.")
    return ctx.redirect("/project/images/")
