"""Admin server actions of ``POST /servers/{id}/action`` (dispatched from
``api/server_actions.py``): ``os-resetState`` and ``injectNetworkInfo``
(``compute/admin_actions.py``). Both answer 202 with no body, as Nova."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req
from stratus.common.errors import BadRequest
from stratus.compute import admin_actions
from stratus.compute.core import ComputeCore

ACTIONS = ("os-resetState", "injectNetworkInfo")


def admin_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    """One of ACTIONS; the body is checked before the server is looked up (400 first,
    as Nova's schema validation)."""
    sid = req.params["id"]
    if name == "os-resetState":
        allowed = " or ".join(f'"{s}"' for s in admin_actions.RESET_STATES)
        if not isinstance(arg, dict) or set(arg) != {"state"} \
                or arg["state"] not in admin_actions.RESET_STATES:
            raise BadRequest(f"Invalid input for os-resetState: {{\"state\": {allowed}}} is "
                             f"expected (got {arg!r}).")
        admin_actions.reset_state(svc, req.ctx, sid, arg["state"])
    else:
        if arg not in (None, {}):
            raise BadRequest("Invalid input for injectNetworkInfo: null (or an empty "
                             "object) is expected.")
        admin_actions.inject_network_info(svc, req.ctx, sid)
    return Response(status_code=202)
