"""Stratus extension `stratus-host-state`: what one host's network agent must converge to.

Admin only (the agent authenticates as a service user):

* ``GET /v2.0/stratus-agent/hosts/{host}`` (the agent's default
  ``network_state_url``) and ``GET /v2.0/stratus/host-state?host=<name>``
  answer the host's ``HostState`` document (``stratus.contracts.network``);
  ``?network_node=true|false`` overrides the registered role for one call;
  with ``&underlay_ip=<ip>`` the call also registers the host (as the PUT
  below), so an agent that only polls keeps its registration current.
* ``PUT /v2.0/stratus-agent/hosts/{host}`` with
  ``{"host": {"underlay_ip": "10.0.0.11", "network_node": false, "l2_backend": "ovs"}}``
  registers the host: its tunnel endpoint becomes every other host's tunnel peer;
  ``l2_backend`` (optional: ``ovs`` or ``linuxbridge``; absent or null: unknown) names the
  L2 agent the agents listing shows. The GET registration above leaves it as it was.
  The agent sends it at start and before every pass (level-triggered).
* ``GET /v2.0/stratus-agent/hosts`` lists the registered hosts (``{"hosts": [{"host",
  "underlay_ip", "network_node", "l2_backend", "updated_at"}]}``), freshest registration
  time included.
* ``PUT /v2.0/stratus-agent/hosts/{host}/ports`` with
  ``{"ports": {"active": [port ids], "down": [port ids]}}``: the agent's view
  of its ports after every pass. Instance ports bound to the host become
  ``ACTIVE`` when listed in ``active`` (and administratively up), every other
  port bound to the host ``DOWN``; on a registered network node the DHCP and
  router ports listed take the status given. Answers the ports whose status
  changed.

The state document carries ``"generation"``: the generation of THIS host's desired
state (bumped in the same transaction by every change that can alter the host's
document, see ``tracking.py``; a change elsewhere leaves it). It only goes up; the
values come from one sequence, so a ``since`` an older API answered (one global
generation) stays valid: the first poll answers at once and the next ones wait.
With ``&since=<generation>&wait=<seconds>`` (at most 30) the GET is a long-poll: it
answers as soon as the host's generation differs from ``since``, or after ``wait``
seconds. Those handlers are async: a waiting agent holds no worker thread, and one read
of every waiting host's generation per ``longpoll.POLL_INTERVAL`` serves every waiter of
the process (``HostService.watch``, a ``stratus.common.longpoll.KeyedWatch``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from stratus.common.app import Req, Routes
from stratus.common.errors import BadRequest
from stratus.common.longpoll import MAX_WAIT
from stratus.contracts.network import L2_BACKENDS
from stratus.network import views
from stratus.network.core import NetworkCore

routes = Routes()

MAX_REPORTED_PORTS = 100000


def wait_seconds(req: Req) -> float:
    raw = req.query.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise BadRequest(f"wait={raw!r}: give a number of seconds from 0 to {MAX_WAIT:g} "
                         "(longer waits are cut to it).")
    return min(value, MAX_WAIT)


def since_generation(req: Req) -> int | None:
    raw = req.query.get("since")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"since={raw!r}: give the generation of the state you hold "
                         "(a non-negative integer).")
    return int(raw)


def host_name(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 255 or "\x00" in value or (
            "/" in value):
        raise BadRequest("The host name must be a string of 1-255 characters (no '/').")
    return value


def underlay_ip(value: object) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else _bad_ip(value)
    except ValueError:
        return _bad_ip(value)


def _bad_ip(value: object) -> str:
    raise BadRequest(f"underlay_ip {value!r} is not an IP address.")


def l2_backend(value: object) -> str | None:
    if value is not None and value not in L2_BACKENDS:
        raise BadRequest(f"l2_backend {value!r}: use one of {', '.join(L2_BACKENDS)} "
                         "(or null: unknown).")
    return value if isinstance(value, str) else None


def port_ids(obj: dict[str, Any], key: str) -> set[str]:
    value = obj.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_REPORTED_PORTS or not all(
            isinstance(v, str) and 0 < len(v) <= 36 for v in value):
        raise BadRequest(f"ports.{key} must be a list of port ids (strings of 1-36 "
                         f"characters, at most {MAX_REPORTED_PORTS}).")
    return set(value)


def network_node_flag(req: Req) -> bool | None:
    raw = req.query.get("network_node")
    if raw is None:
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise BadRequest(f"network_node={raw!r}: use true or false.")
    return raw.lower() in ("true", "1")


def state(req: Req, svc: NetworkCore, host: str) -> dict[str, Any]:
    svc.require_admin(req.ctx, "get_host_state")
    host = host_name(host)
    flag = network_node_flag(req)
    underlay = None
    if req.query.get("underlay_ip") is not None:
        underlay = underlay_ip(req.query.get("underlay_ip"))
    return svc.hosts.state(host, flag, underlay)


def check(req: Req, svc: NetworkCore, host: str) -> tuple[float, int | None]:
    svc.require_admin(req.ctx, "get_host_state")
    host_name(host)
    network_node_flag(req)
    return wait_seconds(req), since_generation(req)


async def long_poll(req: Req, svc: NetworkCore, host: Callable[[Req], str]) -> dict[str, Any]:
    # Async: an agent waiting for a change holds no worker thread.
    wait, since = await run_in_threadpool(check, req, svc, host(req))
    if since is not None and wait > 0:
        await svc.hosts.watch.wait((host(req), network_node_flag(req)), since, wait)
    return await run_in_threadpool(state, req, svc, host(req))


@routes.add("GET", "/v2.0/stratus/host-state")
async def host_state_query(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return await long_poll(req, svc, lambda req: req.query.get("host", ""))


@routes.add("GET", "/v2.0/stratus-agent/hosts/{host}")
async def host_state_path(req: Req, svc: NetworkCore) -> dict[str, Any]:
    return await long_poll(req, svc, lambda req: req.params["host"])


@routes.add("GET", "/v2.0/stratus-agent/hosts")
def list_hosts(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "list_agent_hosts")
    return {"hosts": svc.hosts.every_host()}


@routes.add("PUT", "/v2.0/stratus-agent/hosts/{host}")
def register_host(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "register_host")
    host = host_name(req.params["host"])
    obj = views.entity(req.body, "host")
    views.only(obj, {"underlay_ip", "network_node", "l2_backend"}, "host")
    underlay = underlay_ip(obj.get("underlay_ip"))
    node = views.boolean(obj, "network_node", False)
    return svc.hosts.register(host, underlay, node, l2_backend(obj.get("l2_backend")))


@routes.add("PUT", "/v2.0/stratus-agent/hosts/{host}/ports")
def report_ports(req: Req, svc: NetworkCore) -> dict[str, Any]:
    svc.require_admin(req.ctx, "report_port_status")
    host = host_name(req.params["host"])
    obj = views.entity(req.body, "ports")
    views.only(obj, {"active", "down"}, "ports")
    active = port_ids(obj, "active")
    down = port_ids(obj, "down") - active
    return svc.hosts.report_ports(host, active, down)
