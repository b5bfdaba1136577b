"""The storage agents' endpoints (admin role: the agents' service user), see
``stratus.contracts.volume``: registration/heartbeat, the long-polled desired state,
and the report of what the host has."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.common.longpoll import MAX_WAIT
from stratus.contracts.volume import ContractError, HostRegistration, StorageReport
from stratus.volume import views
from stratus.volume.core import VolumeCore

routes = Routes()
H = "/v3/storage/hosts"


def _admin(req: Req, svc: VolumeCore) -> None:
    svc.require_admin(req.ctx, "stratus:storage-agent")


@routes.add("POST", H)
def register(req: Req, svc: VolumeCore) -> dict[str, Any]:
    _admin(req, svc)
    try:
        reg = HostRegistration.from_dict(req.body)
    except ContractError as exc:
        raise BadRequest(f"Invalid host registration: {exc}") from None
    return svc.storage.register(reg)


@routes.add("GET", H)
def list_hosts(req: Req, svc: VolumeCore) -> dict[str, Any]:
    _admin(req, svc)
    return {"hosts": [{"host": h.host, "portal": h.portal, "iqn_prefix": h.iqn_prefix,
                       "capacity_gb": h.capacity_gb, "free_gb": h.free_gb,
                       "formats": list(h.formats or []), "generation": h.generation,
                       "up": svc.storage.is_up(h), "heartbeat_at": views.ts(h.heartbeat_at),
                       "reported_at": views.ts(h.reported_at)}
                      for h in svc.storage.hosts()]}


def _number(req: Req, key: str) -> float | None:
    raw = req.query.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{key} must be a number, not {raw!r}.") from None
    if value < 0 or value != value:
        raise BadRequest(f"{key} must be 0 or more.")
    return value


@routes.add("GET", H + "/{host}/state")
async def state(req: Req, svc: VolumeCore) -> Response:
    """The host's desired state; with ``since`` (or ``generation``) and ``wait`` (at most
    30 s) it answers once the host's generation moves or the wait is over."""
    await run_in_threadpool(_admin, req, svc)
    host = req.params["host"]
    since = _number(req, "since")
    if since is None:
        since = _number(req, "generation")
    wait = min(_number(req, "wait") or 0.0, MAX_WAIT)
    if since is not None and wait > 0:
        await svc.watch.wait(host, int(since), wait)
    doc = await run_in_threadpool(svc.storage.state, host)
    return JSONResponse(doc.to_dict())


@routes.add("POST", H + "/{host}/report")
def report(req: Req, svc: VolumeCore) -> dict[str, Any]:
    _admin(req, svc)
    try:
        body = StorageReport.from_dict(req.body)
    except ContractError as exc:
        raise BadRequest(f"Invalid storage report: {exc}") from None
    return svc.storage.report(req.params["host"], body)
