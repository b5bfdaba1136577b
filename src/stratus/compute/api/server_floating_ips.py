"""addFloatingIp / removeFloatingIp of ``POST /servers/{id}/action`` (dispatched from
``api/server_actions.py``; compute/server_floating_ips.py), until microversion 2.43 as in
Nova (404 from 2.44). 202 with no body."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.responses import Response

from stratus.common.app import Req
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.server_floating_ips import ServerFloatingIps

ACTIONS = ("addFloatingIp", "removeFloatingIp")
POLICY = {"addFloatingIp": "os_compute_api:os-floating-ips:add",
          "removeFloatingIp": "os_compute_api:os-floating-ips:remove"}


def _ip(arg: dict[str, Any], key: str, name: str) -> str:
    value = arg.get(key)
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else ""
    except ValueError:
        pass
    raise BadRequest(f"Invalid input for field/attribute {key} of {name}: {value!r} is not "
                     "an IPv4 or IPv6 address.")


def floating_ip_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    if views.mv(req) >= (2, 44):
        raise NotFound(f"The {name} action is gone from microversion 2.44; use the network "
                       "API's floating IPs.")
    allowed = {"address", "fixed_address"} if name == "addFloatingIp" else {"address"}
    if not isinstance(arg, dict) or "address" not in arg or set(arg) - allowed:
        keys = '"address"' + (' and optionally "fixed_address"'
                              if name == "addFloatingIp" else "")
        raise BadRequest(f"Invalid input for {name}: an object with {keys} is expected.")
    address = _ip(arg, "address", name)
    svc.require_member(req.ctx, POLICY[name])
    actions = ServerFloatingIps(svc)
    if name == "addFloatingIp":
        fixed = _ip(arg, "fixed_address", name) if "fixed_address" in arg else None
        actions.add(req.ctx, req.params["id"], address, fixed)
    else:
        actions.remove(req.ctx, req.params["id"], address)
    return Response(status_code=202)
