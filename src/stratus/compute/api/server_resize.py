"""The resize actions (``POST /servers/{id}/action``: ``resize``, ``confirmResize``,
``revertResize``), dispatched from ``api/server_actions.py``, and ``GET /os-migrations``
(admin): Nova's bodies and answers (202, 204 for a confirm); the work is in
``compute/server_resize.py``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.compute import views
from stratus.compute.core import ComputeCore
from stratus.compute.server_resize import migration_view

routes = Routes()
ACTIONS = ("resize", "confirmResize", "revertResize")
MIGRATION_FILTERS = ("status", "instance_uuid", "migration_type", "source_compute")


def parse_resize(arg: Any) -> str:
    """The flavor id of ``{"resize": {"flavorRef", "OS-DCF:diskConfig"?}}`` (a flavor
    link's last segment is its id, as Nova takes it)."""
    if not isinstance(arg, dict):
        raise BadRequest("Invalid input for resize: an object with 'flavorRef' is expected.")
    views.only(arg, {"flavorRef", "OS-DCF:diskConfig"}, "resize")
    ref = arg.get("flavorRef")
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise BadRequest("Invalid input for field/attribute flavorRef: 'flavorRef' is a "
                         "required property (a flavor id or link).")
    return ref.rstrip("/").rsplit("/", 1)[-1]


def resize_action(req: Req, svc: ComputeCore, name: str, arg: Any) -> Response:
    """One of :data:`ACTIONS` on the server of the request."""
    sid = req.params["id"]
    if name == "resize":
        flavor_id = parse_resize(arg)
        svc.servers.resize(req.ctx, sid, flavor_id, views.disk_config(arg))
        return Response(status_code=202)
    if arg is not None and arg != {}:
        raise BadRequest(f"Invalid input for {name}: null is expected.")
    if name == "confirmResize":
        svc.servers.confirm_resize(req.ctx, sid)
        return Response(status_code=204)
    svc.servers.revert_resize(req.ctx, sid)
    return Response(status_code=202)


@routes.add("GET", "/v2.1/os-migrations")
def list_migrations(req: Req, svc: ComputeCore) -> JSONResponse:
    """Every resize, newest first (admin), filtered by status, instance_uuid,
    migration_type or source_compute, and from 2.80 user_id or project_id."""
    v = views.mv(req)
    known = MIGRATION_FILTERS + (("user_id", "project_id") if v >= (2, 80) else ())  # 2.80
    unknown = set(req.query) - set(known) - {"hidden", "host", "cell_name", "limit", "marker"}
    if unknown and v >= (2, 59):
        raise BadRequest(f"Invalid input for query parameters {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(known)}.")
    filters = {k: str(req.query[k]) for k in known if k in req.query}
    return JSONResponse({"migrations": [migration_view(x, v)
                                        for x in svc.servers.migrations(req.ctx, filters)]})
