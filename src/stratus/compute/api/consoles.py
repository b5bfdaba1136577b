"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6+), the older
``os-getVNCConsole`` action (2.1-2.5, dispatched from api/server_actions.py), Nova's
``os-console-auth-tokens/{token}`` (admin, shows without spending) and the internal
call ``stratus-novncproxy`` spends a token with (admin: the proxy's service user)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.consoles import NOVA_PROTOCOLS
from stratus.compute.core import ComputeCore

routes = Routes()
POLICY = "os_compute_api:os-remote-consoles"


@routes.add("POST", "/v2.1/servers/{id}/remote-consoles")
def create_remote_console(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """``{"remote_console": {"protocol": "vnc", "type": "novnc"}}`` -> its URL."""
    if views.mv(req) < (2, 6):
        raise NotFound("remote-consoles needs microversion 2.6 or later; below it use the "
                       "os-getVNCConsole server action.")
    svc.require_member(req.ctx, POLICY)
    data = views.obj(req.body, "remote_console")
    views.only(data, {"protocol", "type"}, "remote_console")
    protocol = views.text(data, "protocol", required=True)
    ctype = views.text(data, "type", required=True)
    assert protocol is not None and ctype is not None
    if protocol not in NOVA_PROTOCOLS:
        raise BadRequest(f"Invalid input for field/attribute protocol. Value: {protocol}. "
                         f"'{protocol}' is not one of {', '.join(NOVA_PROTOCOLS)}.")
    url = svc.consoles.issue(req.ctx, req.params["id"], protocol, ctype)
    return {"remote_console": {"protocol": protocol, "type": ctype, "url": url}}


def get_vnc_console(req: Req, svc: ComputeCore, arg: Any) -> JSONResponse:
    """The ``os-getVNCConsole`` action ``{"type": "novnc"}`` (gone from 2.6, as in Nova)."""
    if views.mv(req) >= (2, 6):
        raise NotFound("The os-getVNCConsole action is gone from microversion 2.6; use "
                       "POST /servers/{id}/remote-consoles.")
    svc.require_member(req.ctx, POLICY)
    if not isinstance(arg, dict) or set(arg) != {"type"} or not isinstance(arg["type"], str):
        raise BadRequest("Invalid input for os-getVNCConsole: {\"type\": \"novnc\"} is "
                         "expected.")
    url = svc.consoles.issue(req.ctx, req.params["id"], "vnc", arg["type"])
    return JSONResponse({"console": {"type": arg["type"], "url": url}}, status_code=200)


@routes.add("GET", "/v2.1/os-console-auth-tokens/{token}")
def show_console_token(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """What a token opens (admin); the token stays usable."""
    svc.require_admin(req.ctx, "os_compute_api:os-console-auth-tokens")
    info = svc.consoles.show(req.params["token"])
    return {"console": {k: info[k] for k in ("instance_uuid", "host", "port",
                                             "internal_access_path")}}


@routes.add("POST", "/v2.1/stratus/console-tokens/{token}/consume")
def consume_console_token(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """The novncproxy's check: ``{"instance": server id or null}`` spends the token once
    and answers where to connect; 404 saying why when it cannot be used."""
    svc.require_admin(req.ctx, "stratus:console-proxy")
    body = req.body if req.body is not None else {}
    if not isinstance(body, dict) or set(body) - {"instance"} or not (
            body.get("instance") is None or isinstance(body["instance"], str)):
        raise BadRequest("The body must be {\"instance\": \"<server id>\"} or empty.")
    return {"console": svc.consoles.consume(req.params["token"], body.get("instance"))}
