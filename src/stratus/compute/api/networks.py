"""os-networks and os-tenant-networks: Nova's deprecated proxies to the network API's
networks (list and show; microversions below 2.36, as in Nova; 404 from 2.36). What only
nova-network could do (create, add, delete, associate and disassociate) Nova answers 410
Gone, and so does Stratus, at every microversion."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import ApiError
from stratus.compute.api.floating_ips import proxy_version
from stratus.compute.core import ComputeCore
from stratus.compute.network_proxy import NetworkProxy, nova_network, tenant_network

routes = Routes()
N = "/v2.1/os-networks"
T = "/v2.1/os-tenant-networks"


class Gone(ApiError):
    status = 410
    title = "Gone"


def gone(what: str) -> Gone:
    return Gone(f"{what} was a nova-network action; nova-network is gone. Use the network "
                "API (/v2.0/networks) to create, delete or share networks.")


@routes.add("GET", N)
def list_networks(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-networks")
    admin = req.ctx.is_admin
    return {"networks": [nova_network(n, admin) for n in NetworkProxy(svc).networks(req.ctx)]}


@routes.add("POST", N + "/add", status=202)
def add_network(req: Req, svc: ComputeCore) -> None:
    raise gone("Adding a network to a project")


@routes.add("GET", N + "/{id}")
def show_network(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-networks")
    net = NetworkProxy(svc).network(req.ctx, req.params["id"])
    return {"network": nova_network(net, req.ctx.is_admin)}


@routes.add("POST", N)
def create_network(req: Req, svc: ComputeCore) -> None:
    raise gone("Creating a network through os-networks")


@routes.add("DELETE", N + "/{id}", status=202)
def delete_network(req: Req, svc: ComputeCore) -> None:
    raise gone("Deleting a network through os-networks")


@routes.add("POST", N + "/{id}/action", status=202)
def network_action(req: Req, svc: ComputeCore) -> None:
    raise gone("Associating or disassociating a network's host or project")


@routes.add("GET", T)
def list_tenant_networks(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-tenant-networks")
    return {"networks": [tenant_network(n) for n in NetworkProxy(svc).networks(req.ctx)]}


@routes.add("GET", T + "/{id}")
def show_tenant_network(req: Req, svc: ComputeCore) -> dict[str, Any]:
    proxy_version(req, "os-tenant-networks")
    return {"network": tenant_network(NetworkProxy(svc).network(req.ctx, req.params["id"]))}


@routes.add("POST", T)
def create_tenant_network(req: Req, svc: ComputeCore) -> None:
    raise gone("Creating a network through os-tenant-networks")


@routes.add("DELETE", T + "/{id}", status=202)
def delete_tenant_network(req: Req, svc: ComputeCore) -> None:
    raise gone("Deleting a network through os-tenant-networks")
