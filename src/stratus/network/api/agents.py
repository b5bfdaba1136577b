"""``/v2.0/agents`` (extension ``agent``) and the scheduler views (``l3_agent_scheduler``,
``dhcp_agent_scheduler``): admin only, as in Neutron (``agents.py``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.network import listing, views
from stratus.network.agents import DHCP, L3
from stratus.network.core import NetworkCore

routes = Routes()


def plain(body: Any) -> dict[str, Any]:
    """The unwrapped body of a scheduling call: ``{"router_id": ...}``/``{"network_id": ...}``."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object like {\"router_id\": \"<id>\"}.")
    return body


@routes.add("GET", "/v2.0/agents")
def list_agents(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return listing.apply(svc.agents.every(req.ctx), req.query, req.base_url, "/v2.0/agents",
                         "agents")


@routes.add("GET", "/v2.0/agents/{agent_id}")
def show_agent(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"agent": listing.trim(svc.agents.show(req.ctx, req.params["agent_id"]), req.query)}


@routes.add("PUT", "/v2.0/agents/{agent_id}")
def update_agent(req: Req, svc: NetworkCore) -> dict[str, Any]:
    obj = views.entity(req.body, "agent")
    return {"agent": svc.agents.update(req.ctx, req.params["agent_id"], obj)}


@routes.add("DELETE", "/v2.0/agents/{agent_id}")
def delete_agent(req: Req, svc: NetworkCore) -> None:
    svc.agents.delete(req.ctx, req.params["agent_id"])


@routes.add("GET", "/v2.0/routers/{router_id}/l3-agents")
def router_agents(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"agents": svc.agents.hosting_router(req.ctx, req.params["router_id"])}


@routes.add("GET", "/v2.0/networks/{network_id}/dhcp-agents")
def network_agents(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"agents": svc.agents.hosting_network(req.ctx, req.params["network_id"])}


@routes.add("GET", "/v2.0/agents/{agent_id}/l3-routers")
def agent_routers(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"routers": svc.agents.routers_of(req.ctx, req.params["agent_id"])}


@routes.add("GET", "/v2.0/agents/{agent_id}/dhcp-networks")
def agent_networks(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return {"networks": svc.agents.networks_of(req.ctx, req.params["agent_id"])}


@routes.add("POST", "/v2.0/agents/{agent_id}/l3-routers", status=201)
def add_router(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.agents.schedule(req.ctx, req.params["agent_id"], L3, plain(req.body),
                        "router_id")
    return {}  # Neutron answers 201 with an empty body of JSON


@routes.add("POST", "/v2.0/agents/{agent_id}/dhcp-networks", status=201)
def add_network(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.agents.schedule(req.ctx, req.params["agent_id"], DHCP, plain(req.body),
                        "network_id")
    return {}


@routes.add("DELETE", "/v2.0/agents/{agent_id}/l3-routers/{router_id}")
def remove_router(req: Req, svc: NetworkCore) -> None:
    svc.agents.unschedule(req.ctx, req.params["agent_id"], L3, req.params["router_id"])


@routes.add("DELETE", "/v2.0/agents/{agent_id}/dhcp-networks/{network_id}")
def remove_network(req: Req, svc: NetworkCore) -> None:
    svc.agents.unschedule(req.ctx, req.params["agent_id"], DHCP, req.params["network_id"])
