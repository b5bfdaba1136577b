"""The network API's check for rows without their owner, at start and every ``[network]
recovery_interval`` seconds.

Every change the network API makes is one database transaction (a port with its MAC,
fixed IPs and groups; a router interface with its port and the subnet's gateway IP), so
a process killed midway leaves nothing: the transaction was committed whole or not at
all. The check is the safety net behind that rule, for rows made some other way (an
older release, a hand edit): a port a network resource owns (a router interface or
gateway, a floating IP's port) whose owner does not exist is deleted, and with it its
IPs. Ports owned by servers are the compute API's to judge (it looks them up by
``device_id``; compute/recovery.py).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.network import models as m
from stratus.network.settings import FLOATINGIP_OWNER, ROUTER_GATEWAY, ROUTER_INTERFACE

if TYPE_CHECKING:
    from stratus.network.core import NetworkCore

LOG = logging.getLogger("stratus.network.recovery")
__all__ = ["recover", "start"]


def recover(core: NetworkCore) -> list[str]:
    """Delete the router and floating IP ports whose router or floating IP is gone (their
    IP allocations go with them); returns their ids."""

    def work(s: Session) -> list[str]:
        routers = sa.select(m.Router.id)
        fips = sa.select(m.FloatingIP.id)
        stray = list(s.scalars(sa.select(m.Port.id).where(sa.or_(
            sa.and_(m.Port.device_owner.in_((ROUTER_INTERFACE, ROUTER_GATEWAY)),
                    m.Port.device_id.not_in(routers)),
            sa.and_(m.Port.device_owner == FLOATINGIP_OWNER,
                    m.Port.device_id.not_in(fips))))))
        if stray:
            s.execute(sa.delete(m.IPAllocation).where(m.IPAllocation.port_id.in_(stray)))
            s.execute(sa.delete(m.PortSecurityGroup).where(
                m.PortSecurityGroup.port_id.in_(stray)))
            s.execute(sa.delete(m.Port).where(m.Port.id.in_(stray)))
        return stray

    stray = core.transaction(work)
    if stray:
        LOG.warning("deleted %d port(s) whose router or floating IP was gone: %s",
                    len(stray), ", ".join(stray))
    return stray


def start(core: NetworkCore, interval: float) -> threading.Thread:
    """Run :func:`recover` now and then every ``interval`` seconds (only now when it is 0)
    in a daemon thread of this process."""
    def loop() -> None:
        halt = threading.Event()
        while True:
            try:
                recover(core)
            except Exception:
                LOG.exception("the check for ports without their owner failed")
            if interval <= 0:
                return
            halt.wait(interval)

    thread = threading.Thread(target=loop, name="network-recovery", daemon=True)
    thread.start()
    return thread
