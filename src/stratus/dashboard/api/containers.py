"""Project > Containers: the containers (count, bytes), create (public read as a
checkbox), delete; a container's objects one pseudo-folder at a time (prefix and the
delimiter ``/``), upload (streamed through to the object store, the CSRF token in the
X-CSRF-Token header), download (streamed back, as an attachment), delete. Shown only
when the catalog has ``object-store``. Object names travel in the query or the form
(``name``), never in the path."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from stratus.common.app import Req, Routes
from stratus.dashboard.cloud import ApiFailure, UserApi
from stratus.dashboard.sessions import CSRF_HEADER, SESSION_COOKIE
from stratus.dashboard.storage import KIND, BadName, check_container, check_object
from stratus.dashboard.web import Dashboard, FormError, Page, page

routes = Routes()
HOME = "/project/containers/"
# What the download passes on from the object store's answer.
PASSED_HEADERS = ("content-length", "content-type", "etag", "last-modified")


def _container(ctx: Page) -> str:
    try:
        return check_container(ctx.request.path_params["container"])
    except BadName as exc:
        raise FormError(str(exc)) from None


def _object(name: str) -> str:
    try:
        return check_object(name)
    except BadName as exc:
        raise FormError(str(exc)) from None


def browse_url(container: str, prefix: str = "") -> str:
    url = f"{HOME}{urllib.parse.quote(container, safe='')}/"
    return f"{url}?{urllib.parse.urlencode({'prefix': prefix})}" if prefix else url


@routes.add("GET", HOME)
@page
def list_containers(ctx: Page) -> Response:
    if not ctx.api.has(KIND):
        return ctx.render("containers.html", section="containers", available=False,
                          containers=[])
    return ctx.render("containers.html", section="containers", available=True,
                      containers=ctx.svc.core.containers(ctx.api))


@routes.add("POST", f"{HOME}create")
@page
def create_container(ctx: Page) -> Response:
    name = ctx.field("name", required=True)
    try:
        check_container(name)
    except BadName as exc:
        raise FormError(str(exc)) from None
    ctx.svc.core.create_container(ctx.api, name, ctx.field("public") == "on")
    ctx.flash("info", f"Container {name} created.")
    return ctx.redirect(HOME)


@routes.add("POST", HOME + "{container}/delete")
@page
def delete_container(ctx: Page) -> Response:
    name = _container(ctx)
    ctx.svc.core.delete_container(ctx.api, name)
    ctx.flash("info", f"Container {name} deleted.")
    return ctx.redirect(HOME)


@routes.add("POST", HOME + "{container}/access")
@page
def set_access(ctx: Page) -> Response:
    name = _container(ctx)
    public = ctx.field("public") == "on"
    ctx.svc.core.set_container_public(ctx.api, name, public)
    ctx.flash("info", f"Container {name} is now {'public' if public else 'private'}.")
    return ctx.redirect(browse_url(name))


@routes.add("GET", HOME + "{container}/")
@page
def browse(ctx: Page) -> Response:
    name = _container(ctx)
    prefix = ctx.request.query_params.get("prefix", "")
    if prefix and not prefix.endswith("/"):
        raise FormError("A folder prefix ends with '/'.")
    listing = ctx.svc.core.browse(ctx.api, name, prefix)
    crumbs = []
    walked = ""
    for part in prefix.split("/")[:-1]:
        walked += part + "/"
        crumbs.append((part, browse_url(name, walked)))
    return ctx.render("container.html", section="containers", container=name,
                      prefix=prefix, crumbs=crumbs, home=browse_url(name),
                      folder_url=lambda p: browse_url(name, p),
                      base=f"{HOME}{urllib.parse.quote(name, safe='')}", **listing)


@routes.add("POST", HOME + "{container}/object/delete")
@page
def delete_object(ctx: Page) -> Response:
    container = _container(ctx)
    name = _object(ctx.field("name", required=True))
    ctx.svc.core.delete_object(ctx.api, container, name)
    ctx.flash("info", f"Object {name} deleted.")
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    return ctx.redirect(browse_url(container, folder))


def _signed_in(svc: Dashboard, request: Request, csrf: bool
               ) -> tuple[UserApi | None, Response | None]:
    """The user's API for a streaming handler, or the refusal (no session, bad CSRF)."""
    session = svc.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None, JSONResponse({"error": "Not signed in, or the session has ended."}, 401)
    if csrf and not session.check_csrf(request.headers.get(CSRF_HEADER)):
        return None, JSONResponse({"error": "The upload was refused: its CSRF token is "
                                   "missing or wrong."}, 403)
    return svc.cloud.user_api(session.token, session.catalog), None


def _names(request: Request) -> tuple[str, str]:
    try:
        return (check_container(request.path_params["container"]),
                check_object(request.query_params.get("name", "")))
    except BadName as exc:
        raise FormError(str(exc)) from None


@routes.add("PUT", HOME + "{container}/object")
async def upload_object(req: Req, svc: Dashboard) -> Response:
    """Stream the request body (the file) to the object store as it arrives."""
    request = req.request
    api, refusal = _signed_in(svc, request, csrf=True)
    if api is None:
        return refusal or JSONResponse({}, 401)
    try:
        container, name = _names(request)
        await svc.core.upload_object(api, container, name, request.stream(),
                                     request.headers.get("content-length"),
                                     request.headers.get("content-type", ""))
    except FormError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    except ApiFailure as exc:
        return JSONResponse({"error": exc.message}, exc.status if exc.status >= 400 else 502)
    return JSONResponse({"container": container, "name": name}, 201)


@routes.add("GET", HOME + "{container}/object")
async def download_object(req: Req, svc: Dashboard) -> Response:
    """The object's bytes streamed back as they come, as an attachment."""
    request = req.request
    api, refusal = _signed_in(svc, request, csrf=False)
    if api is None:
        return refusal or JSONResponse({}, 401)
    try:
        container, name = _names(request)
        resp, client = await svc.core.open_object(api, container, name)
    except FormError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    except ApiFailure as exc:
        return JSONResponse({"error": exc.message}, exc.status if exc.status >= 400 else 502)
    headers = {k: resp.headers[k] for k in PASSED_HEADERS if k in resp.headers}
    filename = name.rsplit("/", 1)[-1]
    headers["content-disposition"] = \
        f"attachment; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.aiter_raw():
                yield chunk
        finally:
            await resp.aclose()
            await client.aclose()

    return StreamingResponse(body(), headers=headers,
                             media_type=headers.get("content-type",
                                                    "application/octet-stream"))
