"""Project > Instances: the list (its status refreshed without a reload from
``/project/instances/status.json``), launch, the actions, an instance's page with its
console log, its VNC console (the novncproxy's page in a frame), and the floating-IP
association."""

from __future__ import annotations

import base64
from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Routes
from stratus.dashboard import views
from stratus.dashboard.core import PAGE_SIZE, POWER_ACTIONS
from stratus.dashboard.web import FormError, Page, check_id, page

routes = Routes()
ACTIONS = {*POWER_ACTIONS, "delete", "snapshot"}
MAX_USER_DATA = 65535


def _marker(ctx: Page) -> str:
    marker = ctx.request.query_params.get("marker", "")
    return check_id(marker, "instance") if marker else ""


def _server_id(ctx: Page) -> str:
    return check_id(ctx.request.path_params["server_id"], "instance")


@routes.add("GET", "/project/instances/")
@page
def list_instances(ctx: Page) -> Response:
    marker = _marker(ctx)
    servers = ctx.svc.core.servers(ctx.api, marker)
    fips = []
    if ctx.api.has("network"):
        fips = ctx.api.get("network", "v2.0/floatingips").get("floatingips", [])
    return ctx.render("instances.html", section="instances", servers=servers,
                      actions=sorted(POWER_ACTIONS), floatingips=fips, marker=marker,
                      next_marker=servers[-1]["id"] if len(servers) == PAGE_SIZE else "")


@routes.add("GET", "/project/instances/status.json")
@page
def instance_statuses(ctx: Page) -> Response:
    return JSONResponse({"servers": ctx.svc.core.statuses(ctx.api, _marker(ctx))})


@routes.add("GET", "/project/instances/launch")
@page
def launch_form(ctx: Page) -> Response:
    return ctx.render("launch.html", section="instances",
                      choices=ctx.svc.core.launch_choices(ctx.api))


@routes.add("POST", "/project/instances/launch")
@page
def launch(ctx: Page) -> Response:
    user_data = ctx.field("user_data")
    if len(user_data) > MAX_USER_DATA:
        raise FormError(f"The user data is longer than {MAX_USER_DATA} characters.")
    spec: dict[str, Any] = {
        "name": ctx.field("name", required=True),
        "image": ctx.field("image"), "volume": ctx.field("volume"),
        "flavor": ctx.field("flavor", required=True),
        "networks": ctx.fields("networks"), "key_name": ctx.field("key_name"),
        "security_groups": ctx.fields("security_groups"),
        "user_data": base64.b64encode(user_data.encode()).decode() if user_data else "",
        "zone": ctx.field("zone"),
        "count": ctx.int_field("count", 1, 100, default=1),
    }
    if not spec["image"] and not spec["volume"]:
        raise FormError("Choose an image or a volume to boot from.")
    ctx.svc.core.launch(ctx.api, spec)
    ctx.flash("info", f"Launching {spec['count']} instance(s) named {spec['name']}.")
    return ctx.redirect("/project/instances/")


@routes.add("GET", "/project/instances/{server_id}/")
@page
def show_instance(ctx: Page) -> Response:
    server_id = _server_id(ctx)
    server = ctx.svc.core.server(ctx.api, server_id)
    log = ctx.svc.core.console_log(ctx.api, server_id) \
        if server.get("status") not in ("BUILD", "ERROR") else ""
    return ctx.render("instance.html", section="instances", server=server, console_log=log,
                      actions=sorted(POWER_ACTIONS),
                      **ctx.svc.core.server_extras(ctx.api, server))


@routes.add("GET", "/project/instances/{server_id}/console_log.json")
@page
def console_log(ctx: Page) -> Response:
    return JSONResponse({"output": ctx.svc.core.console_log(ctx.api, _server_id(ctx))})


@routes.add("GET", "/project/instances/{server_id}/console/")
@page
def vnc_console(ctx: Page) -> Response:
    """Horizon's Console tab: the noVNC client of a fresh one-time console URL in a frame;
    this page's CSP allows frames from the proxy's origin only."""
    server_id = _server_id(ctx)
    server = ctx.svc.core.server(ctx.api, server_id)
    url = ctx.svc.core.console_url(ctx.api, server_id)
    origin = views.frame_origin(url)
    if origin is None:
        raise FormError(f"The compute API gave a console URL this page cannot frame: {url}")
    resp = ctx.render("console.html", section="instances", server=server, console_url=url)
    resp.headers["content-security-policy"] = views.csp_framing(origin)
    return resp


@routes.add("POST", "/project/instances/{server_id}/action")
@page
def server_action(ctx: Page) -> Response:
    server_id = _server_id(ctx)
    action = ctx.field("action", required=True)
    if action not in ACTIONS:
        raise FormError(f"Unknown action {action!r}; one of {', '.join(sorted(ACTIONS))}.")
    ctx.svc.core.server_action(ctx.api, server_id, action, ctx.field("snapshot_name"))
    ctx.flash("info", f"{action} requested.")
    return ctx.redirect("/project/instances/")


@routes.add("POST", "/project/instances/{server_id}/floating_ip")
@page
def associate_floating_ip(ctx: Page) -> Response:
    ctx.svc.core.associate_floating_ip(ctx.api, ctx.field("floatingip", required=True),
                                       _server_id(ctx))
    ctx.flash("info", "Floating IP associated.")
    return ctx.redirect("/project/instances/")


@routes.add("POST", "/project/instances/{server_id}/volumes")
@page
def attach_volume(ctx: Page) -> Response:
    server_id = _server_id(ctx)
    ctx.svc.core.attach_volume(ctx.api, server_id,
                               check_id(ctx.field("volume", required=True), "volume"))
    ctx.flash("info", "Volume attachment requested.")
    return ctx.redirect(f"/project/instances/{server_id}/")


@routes.add("POST", "/project/instances/{server_id}/volumes/{volume_id}/detach")
@page
def detach_volume(ctx: Page) -> Response:
    server_id = _server_id(ctx)
    ctx.svc.core.detach_volume(ctx.api, server_id,
                               check_id(ctx.request.path_params["volume_id"], "volume"))
    ctx.flash("info", "Volume detachment requested.")
    return ctx.redirect(f"/project/instances/{server_id}/")
