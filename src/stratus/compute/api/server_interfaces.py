"""A server's ports as Nova shows them: os-interface and ips (by network); attaching and
detaching an interface (``POST``/``DELETE`` os-interface, ``compute/server_interfaces.py``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest, NotFound
from stratus.compute import models as m
from stratus.compute import server_lock, views
from stratus.compute.api.servers import _uuid
from stratus.compute.core import ComputeCore
from stratus.compute.server_interfaces import AttachRequest

routes = Routes()
P = "/v2.1/servers/{id}"


@routes.add("GET", P + "/os-interface")
def list_interfaces(req: Req, svc: ComputeCore) -> dict[str, Any]:
    srv, ports = svc.servers.with_ports(req.ctx, req.params["id"])
    return {"interfaceAttachments": [attachment(req, srv, p) for p in ports]}


def attachment(req: Req, srv: m.Server, p: m.ServerPort) -> dict[str, Any]:
    """One port as os-interface shows it (its ``tag`` from 2.70)."""
    tagged = {"tag": p.tag} if views.mv(req) >= (2, 70) else {}
    return {"port_id": p.port_id, "net_id": p.network_id, "mac_addr": p.mac_address,
            "port_state": "ACTIVE" if srv.vm_state in ("active", "resized") else "DOWN",
            "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                          for ip in p.fixed_ips], **tagged}


def parse_attach(req: Req) -> AttachRequest:
    """The body of ``POST os-interface`` (``tag`` from 2.49); neither a port nor a
    network: the service picks the one network the user can use, as Nova does."""
    body = req.body
    if not isinstance(body, dict) or set(body) - {"interfaceAttachment"}:
        raise BadRequest("Invalid input: {\"interfaceAttachment\": {...}} is expected.")
    arg = body.get("interfaceAttachment", {})
    if not isinstance(arg, dict):
        raise BadRequest("Invalid input for field/attribute interfaceAttachment: an object "
                         "is expected.")
    allowed = {"port_id", "net_id", "fixed_ips"} | (
        {"tag"} if views.mv(req) >= (2, 49) else set())
    views.only(arg, allowed, "interfaceAttachment")
    out = AttachRequest()
    for key in ("port_id", "net_id"):
        if arg.get(key) is not None:
            setattr(out, key, _uuid(arg[key], key))
    if out.port_id and out.net_id:
        raise BadRequest("Must not input both network_id and port_id")
    ips = arg.get("fixed_ips")
    if ips is not None:
        if not isinstance(ips, list) or len(ips) != 1 or not isinstance(ips[0], dict) \
                or set(ips[0]) != {"ip_address"} or not isinstance(ips[0]["ip_address"], str):
            raise BadRequest("Invalid input for field/attribute fixed_ips: one "
                             "{\"ip_address\": \"...\"} is expected.")
        if not out.net_id:
            raise BadRequest("Must input network_id when request IP address")
        out.fixed_ip = ips[0]["ip_address"]
    if "tag" in arg:
        tag = arg["tag"]
        if not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or "," in tag:
            raise BadRequest("Invalid input for field/attribute tag: 1 to 60 characters "
                             "without '/' or ',' are expected.")
        out.tag = tag
    return out


@routes.add("POST", P + "/os-interface")
def attach_interface(req: Req, svc: ComputeCore) -> JSONResponse:
    """Attach a port (made on a network, or the user's): 200 with the attachment."""
    svc.require_member(req.ctx, "os_compute_api:os-attach-interfaces:create")
    parsed = parse_attach(req)
    server_lock.refuse_if_locked(svc, req.ctx, req.params["id"])
    srv, port = svc.servers.attach_interface(req.ctx, req.params["id"], parsed)
    return JSONResponse({"interfaceAttachment": attachment(req, srv, port)})


@routes.add("DELETE", P + "/os-interface/{port}", status=202)
def detach_interface(req: Req, svc: ComputeCore) -> Response:
    """Detach the port (202); the agent unplugs it from the guest."""
    svc.require_member(req.ctx, "os_compute_api:os-attach-interfaces:delete")
    server_lock.refuse_if_locked(svc, req.ctx, req.params["id"])
    svc.servers.detach_interface(req.ctx, req.params["id"], req.params["port"])
    return Response(status_code=202)


@routes.add("GET", P + "/os-interface/{port}")
def show_interface(req: Req, svc: ComputeCore) -> dict[str, Any]:
    found = [i for i in list_interfaces(req, svc)["interfaceAttachments"]
             if i["port_id"] == req.params["port"]]
    if not found:
        raise NotFound(f"Port {req.params['port']} is not attached to the instance.")
    return {"interfaceAttachment": found[0]}


@routes.add("GET", P + "/ips")
def list_addresses(req: Req, svc: ComputeCore) -> dict[str, Any]:
    _srv, ports = svc.servers.with_ports(req.ctx, req.params["id"])
    return {"addresses": {k: [{"version": a["version"], "addr": a["addr"]} for a in v]
                          for k, v in views.addresses(ports).items()}}


@routes.add("GET", P + "/ips/{network}")
def list_addresses_of_network(req: Req, svc: ComputeCore) -> dict[str, Any]:
    found = list_addresses(req, svc)["addresses"]
    if req.params["network"] not in found:
        raise NotFound("Instance is not a member of specified network")
    return {req.params["network"]: found[req.params["network"]]}
