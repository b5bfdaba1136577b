"""``restore`` and ``forceDelete`` of ``POST /servers/{id}/action`` (Nova's
os-deferred-delete), dispatched from ``api/server_actions.py``.

Stratus has no soft delete (Nova's ``reclaim_instance_interval`` is 0 here: a delete
deletes at once), so no server is ever ``SOFT_DELETED``: ``restore`` finds the server
(404) and answers 409 as Nova does for a server not in that state; ``forceDelete`` deletes
the server at once, which is what Nova's does for a server in any other state.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from stratus.common.app import Req
from stratus.common.errors import BadRequest, Conflict
from stratus.compute.core import ComputeCore

ACTIONS = ("restore", "forceDelete")


def deferred_delete_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    if arg not in (None, {}):
        raise BadRequest(f"Invalid input for {name}: null (or an empty object) is "
                         "expected.")
    sid = req.params["id"]
    if name == "restore":
        shown = svc.servers.show(req.ctx, sid)  # 404 first
        svc.require_member(req.ctx, "os_compute_api:os-deferred-delete:restore")
        raise Conflict(f"Cannot 'restore' instance {sid} while it is in vm_state "
                       f"{shown.server.vm_state}: only a soft-deleted server can be "
                       "restored, and Stratus deletes servers at once (no soft delete).")
    svc.require_member(req.ctx, "os_compute_api:os-deferred-delete:force")
    svc.servers.delete(req.ctx, sid)  # recorded as the instance action "delete", as Nova
    return Response(status_code=202)
