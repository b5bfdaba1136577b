"""Stratus extension: the compute agent's wait for a port to become ACTIVE.

``GET /v2.0/stratus-agent/ports/{port_id}/status?wait=<seconds>`` (admin only, the
compute agent's service user) answers ``{"port": {"id": ..., "status": ...}}`` as soon
as the port is ACTIVE, or after ``wait`` seconds (at most 30; without ``wait`` at
once) with the status it has then; 404 when there is no such port. The handler is
async: a waiting agent holds no worker thread (``stratus.network.portwait``).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.network.api.agent_hosts import wait_seconds
from stratus.network.core import NetworkCore
from stratus.network.portwait import watch_of

routes = Routes()


def _check(req: Req, svc: NetworkCore) -> tuple[str, float]:
    svc.require_admin(req.ctx, "get_port_status")
    return str(req.params["port_id"]), wait_seconds(req)


def _answer(svc: NetworkCore, port_id: str) -> dict[str, Any]:
    status = watch_of(svc).status(port_id)
    if status is None:
        raise NotFound(f"Port {port_id} could not be found.")
    return {"port": {"id": port_id, "status": status}}


@routes.add("GET", "/v2.0/stratus-agent/ports/{port_id}/status")
async def port_status(req: Req, svc: NetworkCore) -> dict[str, Any]:
    port_id, wait = await run_in_threadpool(_check, req, svc)
    if wait > 0:
        await watch_of(svc).wait_active(port_id, wait)
    return await run_in_threadpool(_answer, svc, port_id)
