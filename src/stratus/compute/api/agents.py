"""The agent endpoints of docs/compute.md: heartbeat, assignments (long-poll), reports,
the metadata lookup and the guest password. Admin (service users) only.

Handlers parse and check the request, call the service layer
(:mod:`stratus.compute.agents`, which answers with :mod:`stratus.contracts`
documents) and render them. The assignments are an ``async`` handler, so agents
waiting in a long-poll hold no worker thread; they wait on ``agents.watch``, the
process's :class:`stratus.common.longpoll.KeyedWatch` of the hosts' generations.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.common.longpoll import MAX_WAIT
from stratus.compute import agents, views
from stratus.compute.core import ComputeCore
from stratus.compute.servers import ServerFlow
from stratus.contracts.compute import (
    HOST_INTS,
    HOST_TEXTS,
    ContractError,
    HostResources,
    ServerReport,
)

P = "/v2.1/stratus"

routes = Routes()


def _admin(req: Req, svc: ComputeCore) -> None:
    svc.require_admin(req.ctx, "stratus:compute-agent")


@routes.add("PUT", P + "/compute-hosts/{host}")
def heartbeat(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _admin(req, svc)
    name = req.params["host"]
    data = views.obj(req.body, "host")
    # Keys this API does not know are ignored: a newer agent still heartbeats.
    ints: dict[str, Any] = {k: views.integer(data, k, 0) for k in HOST_INTS if k in data}
    given: dict[str, Any] = {k: views.text(data, k, maxlen=255) for k in HOST_TEXTS if k in data}
    if data.get("host") not in (None, name):
        raise BadRequest(f"The body names host {data['host']}, the URL {name}.")
    if data.get("problems") is not None:  # optional: a newer agent's host problems
        try:
            given["problems"] = HostResources.from_dict({"problems": data["problems"]}).problems
        except ContractError as exc:
            raise BadRequest(str(exc)) from None
    virt = given.get("virt_type")
    if virt is not None and virt not in ("kvm", "qemu"):
        raise BadRequest(f"Invalid virt_type {virt!r}; use kvm or qemu.")
    return agents.heartbeat(svc, name, HostResources(**ints, **given))


@routes.add("GET", P + "/compute-hosts", body=False)
def list_hosts(req: Req, svc: ComputeCore) -> dict[str, Any]:
    """Every compute host with what its agent last said makes it slow (``problems``:
    contracts.compute.HostProblem documents, empty when healthy), for operators; Nova's
    os-services entry has no room for it."""
    svc.require_admin(req.ctx, "os_compute_api:os-services:list")
    return {"hosts": [{"host": h.host, "state": "up" if svc.hosts.alive(h) else "down",
                       "virt_type": h.virt_type, "problems": list(h.problems or [])}
                      for h in svc.hosts.all()]}


@routes.add("GET", P + "/compute-hosts/{host}/servers")
async def assignments(req: Req, svc: ComputeCore) -> Response:
    """The host's servers; with ``since`` (its last generation) and ``wait`` (at most
    30 s), answers when the generation moves or the wait is over."""
    await run_in_threadpool(_admin, req, svc)
    name = req.params["host"]
    wait = 0.0
    if "wait" in req.query:
        try:
            wait = min(max(float(req.query["wait"]), 0.0), MAX_WAIT)
        except ValueError:
            raise BadRequest("wait must be a number of seconds (at most 30).") from None
    since = None
    if "since" in req.query:
        since = views.integer({"since": req.query["since"]}, "since")
    if since is not None and wait > 0:
        # One read per interval serves every agent waiting in this process (any host).
        await agents.watch(svc).wait(name, since, wait)
    found = await run_in_threadpool(agents.assignments, svc, name)
    return JSONResponse(found.to_dict())


@routes.add("POST", P + "/compute-hosts/{host}/servers/{id}/report")
def report(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _admin(req, svc)
    try:
        body = ServerReport.from_dict(req.body)  # keys it does not know are ignored
    except ContractError as exc:
        raise BadRequest(exc.reason) from None
    ServerFlow(svc).report(req.params["host"], req.params["id"], body.to_dict())
    return agents.server_after_report(svc, req.params["id"])


@routes.add("GET", P + "/metadata")
def metadata_lookup(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _admin(req, svc)
    net, ip = req.query.get("network_id"), req.query.get("fixed_ip")
    if not net or not ip:
        raise BadRequest("network_id and fixed_ip are required.")
    return {"instance": agents.metadata_lookup(svc, net, ip).to_dict()}


@routes.add("PUT", P + "/metadata/{id}/password")
def password(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _admin(req, svc)
    if not isinstance(req.body, dict) or not isinstance(req.body.get("password"), str):
        raise BadRequest("A body {\"password\": \"...\"} is expected.")
    value = req.body["password"]
    if len(value) > 256 * 1024 or not value:
        raise BadRequest("The password blob must be 1 byte to 256 KiB.")
    agents.set_password(svc, req.params["id"], value)
    return {"password": "set"}
