"""Nova's admin server actions (``os-admin-actions``): ``os-resetState`` and
``injectNetworkInfo``.

- ``reset_state``: an administrator's word on a server's state. The server's ``vm_state``
  becomes ``active`` or ``error`` and its ``task_state`` is cleared, as Nova does; the
  work still open of an earlier action's task ends with ``Error`` (it will not be
  finished: no event is left waiting for a task that is gone). The action ``resetState``
  is recorded with no event (Nova records it so). The host's agent is woken: from
  ``active`` it converges the server to its wanted power state and reports what it
  really has; ``error`` stops its work on the server until the next reset (a rebuild or
  a delete still work).
- ``inject_network_info``: Nova asks the hypervisor to re-apply the instance's network
  info (its libvirt driver does nothing but refresh its network cache). Stratus does
  that refresh for real: the server's ports are read again from the network API (MAC,
  fixed IPs, network name and MTU, the subnets' gateway, DNS and routes), kept in the
  server's port records (what the metadata's ``network_data.json``, the addresses and
  the agent's assignment are made of); the server's ``network_generation`` is raised and
  the host's agent woken: it plugs every port again (taps, MTU, interfaces the domain
  lacks; ``agent/compute/changes.py``). Recorded as ``injectNetworkInfo`` with an event
  closed by the agent's next report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.clients import ServiceError
from stratus.common.errors import BadRequest, Conflict, ServiceUnavailable
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute.instance_actions import abandon as abandon_action
from stratus.compute.instance_actions import record as record_action

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

RESET_STATES = ("active", "error")
SUBNET_KEYS = ("id", "cidr", "gateway_ip", "dns_nameservers", "host_routes", "enable_dhcp",
               "ip_version")


def reset_state(core: ComputeCore, ctx: AuthContext, sid: str, state: str) -> None:
    """Set the server's ``vm_state`` to ``state`` (``active`` or ``error``) with no task;
    the caller must be allowed ``os_compute_api:os-admin-actions:reset_state``, checked
    once the server is found (404 before 403, as Nova)."""
    if state not in RESET_STATES:
        raise BadRequest(f"Invalid input for field/attribute state: {state!r} is not one "
                         f"of {list(RESET_STATES)}.")

    def work(s: Session) -> None:
        srv = core.server(s, ctx, sid)
        core.require_admin(ctx, "os_compute_api:os-admin-actions:reset_state")
        if srv.task_state == "deleting":
            raise Conflict(f"Cannot 'os-resetState' instance {sid} while it is being "
                           "deleted.")
        if srv.task_state is not None:
            abandon_action(s, srv, f"The server's state was reset to {state} by an "
                           f"administrator while its task {srv.task_state} was running.")
        srv.vm_state, srv.task_state, srv.updated_at = state, None, utcnow()
        core.bump(s, srv.host)
        record_action(s, ctx, srv, "resetState")  # no event, as Nova

    core.transaction(work)


def _port_record(core: ComputeCore, port_id: str) -> dict[str, Any] | None:
    """What the network API says now of one port, in ``m.ServerPort``'s fields; None when
    the port is gone (the server's interface list is os-interface's business)."""
    ds = core.downstream
    try:
        port = ds.get_port(None, port_id)
    except ServiceError as exc:
        if exc.status == 404:
            return None
        raise
    net = ds.get_network(None, port["network_id"])
    fixed = list(port.get("fixed_ips") or [])
    subnets = []
    for sub_id in dict.fromkeys(ip["subnet_id"] for ip in fixed if ip.get("subnet_id")):
        sub = ds.get_subnet(None, sub_id)
        subnets.append({k: sub.get(k) for k in SUBNET_KEYS})
    return {"network_id": port["network_id"], "mac_address": port.get("mac_address", ""),
            "fixed_ips": fixed, "network_name": net.get("name", ""),
            "mtu": net.get("mtu") or 1500, "subnets": subnets}


def inject_network_info(core: ComputeCore, ctx: AuthContext, sid: str) -> int:
    """Refresh the server's ports from the network API and wake its host's agent; the
    number of ports refreshed. Admin (``os_compute_api:os-admin-actions:
    inject_network_info``), checked once the server is found."""
    def ports(s: Session) -> list[str]:
        srv = core.server(s, ctx, sid)
        core.require_admin(ctx, "os_compute_api:os-admin-actions:inject_network_info")
        if srv.task_state == "deleting":
            raise Conflict(f"Cannot 'injectNetworkInfo' instance {sid} while it is being "
                           "deleted.")
        return list(s.scalars(sa.select(m.ServerPort.port_id).where(
            m.ServerPort.server_id == sid).order_by(m.ServerPort.position)))

    port_ids = core.transaction(ports)
    try:  # outside a transaction: the network API is another service
        fresh = {pid: _port_record(core, pid) for pid in port_ids}
    except (ServiceError, KeyError, TypeError) as exc:
        raise ServiceUnavailable(f"The network API could not be read for instance {sid}'s "
                                 f"ports: {exc}") from None

    def record(s: Session) -> int:
        srv = core.server(s, ctx, sid)
        done = 0
        for pid, rec in fresh.items():
            row = s.get(m.ServerPort, pid)
            if row is None or rec is None or row.server_id != sid:
                continue
            old_ips = [ip["ip_address"] for ip in row.fixed_ips or []]
            s.execute(sa.delete(m.ServerAddress).where(
                m.ServerAddress.server_id == sid, m.ServerAddress.network_id == row.network_id,
                m.ServerAddress.ip_address.in_(old_ips)))
            for key, value in rec.items():
                setattr(row, key, value)
            s.flush()
            for ip in rec["fixed_ips"]:
                s.add(m.ServerAddress(network_id=rec["network_id"],
                                      ip_address=ip["ip_address"], server_id=sid))
            done += 1
        srv.updated_at = utcnow()
        srv.network_generation = (srv.network_generation or 0) + 1  # the agent re-plugs
        core.bump(s, srv.host)
        record_action(s, ctx, srv, "injectNetworkInfo")  # compute/instance_actions.py
        return done

    result: int = core.transaction(record)
    return result
