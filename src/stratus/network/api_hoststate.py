"""Stratus extension `stratus-host-state`: what one host's network agent must converge to.

Admin only (the agent authenticates as a service user):

* ``GET /v2.0/stratus-agent/hosts/{host}`` (the agent's default
  ``network_state_url``) and ``GET /v2.0/stratus/host-state?host=<name>``
  answer the host's ``HostState`` document (``stratus.agent.network_model``);
  ``?network_node=true|false`` overrides the registered role for one call.
* ``PUT /v2.0/stratus-agent/hosts/{host}`` with
  ``{"host": {"underlay_ip": "10.0.0.11", "network_node": false}}`` registers
  the host: its tunnel endpoint becomes every other host's tunnel peer.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.orm import Session

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest
from stratus.network import hoststate, views
from stratus.network import models as m
from stratus.network.core import NetworkCore, utcnow


def host_name(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 255 or "\x00" in value or (
            "/" in value):
        raise BadRequest("The host name must be a string of 1-255 characters (no '/').")
    return value


def network_node_flag(req: Req) -> bool | None:
    raw = req.query.get("network_node")
    if raw is None:
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise BadRequest(f"network_node={raw!r}: use true or false.")
    return raw.lower() in ("true", "1")


def add_routes(router: Router, core: NetworkCore) -> None:

    def state(req: Req, host: str) -> dict[str, Any]:
        core.require_admin(req.ctx, "get_host_state")
        flag = network_node_flag(req)
        with core.db.session() as s:
            return hoststate.host_state(s, host_name(host), flag)

    @router.add("GET", "/v2.0/stratus/host-state")
    def host_state_query(req: Req) -> dict[str, Any]:
        return state(req, req.query.get("host", ""))

    @router.add("GET", "/v2.0/stratus-agent/hosts/{host}")
    def host_state_path(req: Req) -> dict[str, Any]:
        return state(req, req.params["host"])

    @router.add("PUT", "/v2.0/stratus-agent/hosts/{host}")
    def register_host(req: Req) -> dict[str, Any]:
        core.require_admin(req.ctx, "register_host")
        host = host_name(req.params["host"])
        obj = views.entity(req.body, "host")
        views.only(obj, {"underlay_ip", "network_node"}, "host")
        underlay = obj.get("underlay_ip")
        if underlay is not None:
            try:
                underlay = str(ipaddress.ip_address(underlay)) if isinstance(
                    underlay, str) else None
            except ValueError:
                underlay = None
            if underlay is None:
                raise BadRequest(f"underlay_ip {obj['underlay_ip']!r} is not an IP address.")
        node = views.boolean(obj, "network_node", False)

        def work(s: Session) -> dict[str, Any]:
            row = s.get(m.AgentHost, host)
            if row is None:
                row = m.AgentHost(host=host, underlay_ip=underlay, network_node=node,
                                  updated_at=utcnow())
                s.add(row)
            else:
                row.underlay_ip = underlay
                row.network_node = node
                row.updated_at = utcnow()
            s.flush()
            return {"host": {"host": row.host, "underlay_ip": row.underlay_ip,
                             "network_node": row.network_node,
                             "updated_at": views.ts(row.updated_at)}}

        return core.transaction(work)
