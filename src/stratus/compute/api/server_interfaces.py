"""A server's ports as Nova shows them: os-interface and ips (by network)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import NotFound
from stratus.compute import views
from stratus.compute.core import ComputeCore

routes = Routes()
P = "/v2.1/servers/{id}"


@routes.add("GET", P + "/os-interface")
def list_interfaces(req: Req, svc: ComputeCore) -> dict[str, Any]:
    srv, ports = svc.servers.with_ports(req.ctx, req.params["id"])
    tagged = {"tag": None} if views.mv(req) >= (2, 70) else {}  # no device tags kept
    return {"interfaceAttachments": [{
        "port_id": p.port_id, "net_id": p.network_id, "mac_addr": p.mac_address,
        "port_state": "ACTIVE" if srv.vm_state == "active" else "DOWN",
        "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                      for ip in p.fixed_ips], **tagged} for p in ports]}


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
