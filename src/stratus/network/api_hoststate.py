"""Stratus extension `stratus-host-state`: what one host's network agent must converge to.

Admin only (the agent authenticates as a service user):

* ``GET /v2.0/stratus-agent/hosts/{host}`` (the agent's default
  ``network_state_url``) and ``GET /v2.0/stratus/host-state?host=<name>``
  answer the host's ``HostState`` document (``stratus.agent.network_model``);
  ``?network_node=true|false`` overrides the registered role for one call;
  with ``&underlay_ip=<ip>`` the call also registers the host (as the PUT
  below), so an agent that only polls keeps its registration current.
* ``PUT /v2.0/stratus-agent/hosts/{host}`` with
  ``{"host": {"underlay_ip": "10.0.0.11", "network_node": false}}`` registers
  the host: its tunnel endpoint becomes every other host's tunnel peer.
  The agent sends it at start and before every pass (level-triggered).
* ``GET /v2.0/stratus-agent/hosts`` lists the registered hosts (``{"hosts": [{"host",
  "underlay_ip", "network_node", "updated_at"}]}``), freshest registration time included.
* ``PUT /v2.0/stratus-agent/hosts/{host}/ports`` with
  ``{"ports": {"active": [port ids], "down": [port ids]}}``: the agent's view
  of its ports after every pass. Instance ports bound to the host become
  ``ACTIVE`` when listed in ``active`` (and administratively up), every other
  port bound to the host ``DOWN``; on a registered network node the DHCP and
  router ports listed take the status given. Answers the ports whose status
  changed.

The state document carries ``"generation"``: the generation of the hosts' desired
state (``state_generation``, bumped in the same transaction by every change that can
alter a host's document, see ``core.py``). With ``&since=<generation>&wait=<seconds>``
(at most 30) the GET is a long-poll: it answers as soon as the generation differs from
``since``, or after ``wait`` seconds. Those handlers are async: a waiting agent holds no
worker thread, and one read of the generation per ``POLL_INTERVAL`` serves every waiter
of the process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.common.app import Req, Router
from stratus.common.errors import BadRequest
from stratus.network import hoststate, views
from stratus.network import models as m
from stratus.network.core import (
    DHCP_OWNER,
    ROUTER_GATEWAY,
    ROUTER_INTERFACE,
    NetworkCore,
    read_generation,
    utcnow,
)

NODE_OWNERS = (DHCP_OWNER, ROUTER_INTERFACE, ROUTER_GATEWAY)
MAX_REPORTED_PORTS = 100000
MAX_WAIT = 30.0
POLL_INTERVAL = 0.25


class GenerationWatch:
    """The state generation for the long-polls of one API process: however many agents
    wait, the database is read at most about once per ``interval``."""

    def __init__(self, read: Callable[[], int], interval: float = POLL_INTERVAL):
        self.read = read
        self.interval = interval
        self._value: int | None = None
        self._at = 0.0
        self._pending: asyncio.Task[int] | None = None

    async def _refresh(self) -> int:
        try:
            value = await run_in_threadpool(self.read)
            self._value, self._at = value, time.monotonic()
            return value
        finally:
            self._pending = None

    async def current(self, fresh: bool = False) -> int:
        if not fresh and self._value is not None and (
                time.monotonic() - self._at < self.interval):
            return self._value
        pending = self._pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._pending = asyncio.get_running_loop().create_task(self._refresh())
        return await asyncio.shield(pending)

    async def wait(self, since: int, timeout: float) -> int:
        """The generation once it differs from ``since``, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        gen = await self.current()
        while True:
            if gen < since:  # an older cached value than the caller's: ask the database
                gen = await self.current(fresh=True)
            if gen != since:
                return gen
            left = deadline - time.monotonic()
            if left <= 0:
                return gen
            await asyncio.sleep(min(self.interval, left))
            gen = await self.current()


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


def add_routes(router: Router, core: NetworkCore) -> None:

    watch = GenerationWatch(core.generation)

    def state(req: Req, host: str) -> dict[str, Any]:
        core.require_admin(req.ctx, "get_host_state")
        host = host_name(host)
        flag = network_node_flag(req)
        if req.query.get("underlay_ip") is not None:
            underlay = underlay_ip(req.query.get("underlay_ip"))
            core.transaction(lambda s: register(s, host, underlay, bool(flag)))
        with core.db.session() as s:
            # The generation first: the document is then at least that new.
            generation = read_generation(s)
            return {**hoststate.host_state(s, host, flag), "generation": generation}

    def check(req: Req, host: str) -> tuple[float, int | None]:
        core.require_admin(req.ctx, "get_host_state")
        host_name(host)
        network_node_flag(req)
        return wait_seconds(req), since_generation(req)

    async def long_poll(request: Request, host: Callable[[Req], str]) -> Response:
        # Async: an agent waiting for a change holds no worker thread.
        req = Req(request, None, router.authenticate)
        wait, since = await run_in_threadpool(check, req, host(req))
        if since is not None and wait > 0:
            await watch.wait(since, wait)
        return JSONResponse(await run_in_threadpool(state, req, host(req)))

    def register(s: Session, host: str, underlay: str | None, node: bool) -> dict[str, Any]:
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

    async def host_state_query(request: Request) -> Response:
        return await long_poll(request, lambda req: req.query.get("host", ""))

    async def host_state_path(request: Request) -> Response:
        return await long_poll(request, lambda req: req.params["host"])

    router.routes.append(Route("/v2.0/stratus/host-state", host_state_query, methods=["GET"]))
    router.routes.append(Route("/v2.0/stratus-agent/hosts/{host}", host_state_path,
                               methods=["GET"]))

    @router.add("GET", "/v2.0/stratus-agent/hosts")
    def list_hosts(req: Req) -> dict[str, Any]:
        core.require_admin(req.ctx, "list_agent_hosts")
        with core.db.session() as s:
            rows = s.scalars(sa.select(m.AgentHost).order_by(m.AgentHost.host))
            return {"hosts": [{"host": r.host, "underlay_ip": r.underlay_ip,
                               "network_node": r.network_node,
                               "updated_at": views.ts(r.updated_at)} for r in rows]}

    @router.add("PUT", "/v2.0/stratus-agent/hosts/{host}")
    def register_host(req: Req) -> dict[str, Any]:
        core.require_admin(req.ctx, "register_host")
        host = host_name(req.params["host"])
        obj = views.entity(req.body, "host")
        views.only(obj, {"underlay_ip", "network_node"}, "host")
        underlay = underlay_ip(obj.get("underlay_ip"))
        node = views.boolean(obj, "network_node", False)

        def work(s: Session) -> dict[str, Any]:
            return register(s, host, underlay, node)

        return core.transaction(work)

    @router.add("PUT", "/v2.0/stratus-agent/hosts/{host}/ports")
    def report_ports(req: Req) -> dict[str, Any]:
        core.require_admin(req.ctx, "report_port_status")
        host = host_name(req.params["host"])
        obj = views.entity(req.body, "ports")
        views.only(obj, {"active", "down"}, "ports")
        active = port_ids(obj, "active")
        down = port_ids(obj, "down") - active

        def set_status(port: m.Port, status: str, changed: dict[str, list[str]]) -> None:
            if port.status != status:
                port.status = status
                port.updated_at = utcnow()
                port.revision_number += 1
                changed[status.lower()].append(port.id)

        def work(s: Session) -> dict[str, Any]:
            changed: dict[str, list[str]] = {"active": [], "down": []}
            for port in s.scalars(sa.select(m.Port).where(
                    m.Port.host_id == host, ~m.Port.device_owner.startswith("network:"))
                    .order_by(m.Port.id)):
                up = port.id in active and port.admin_state_up
                set_status(port, "ACTIVE" if up else "DOWN", changed)
            registered = s.get(m.AgentHost, host)
            if registered is not None and registered.network_node and (active | down):
                for port in s.scalars(sa.select(m.Port).where(
                        m.Port.id.in_(active | down), m.Port.device_owner.in_(NODE_OWNERS))
                        .order_by(m.Port.id)):
                    up = port.id in active and port.admin_state_up
                    set_status(port, "ACTIVE" if up else "DOWN", changed)
            s.flush()
            return {"ports": changed}

        return core.transaction(work)
