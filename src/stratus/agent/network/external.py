"""The deploy's external bridge (``[agent] external_bridge``), made again when missing.

The network role creates the bridge the public network is mapped to (``st-br-ex``) with
``ip link add``, which a host reboot forgets: floating IPs then stay unreachable until
the deploy is run again. The agent owns it from then on, level-triggered: every pass it
makes the bridge again when it is missing (marked ``stratus:<deploy prefix>`` as the role
marks it, so teardown still removes it), gives it its address when that is missing (other
addresses are left alone) and brings it up. A device of that name that is not a bridge is
an error the agent reports, never deletes.
"""

from __future__ import annotations

import logging

from stratus.agent.ip_lib import IpLib
from stratus.agent.network.drivers.base import DriverError

LOG = logging.getLogger(__name__)


class ExternalBridge:
    """Ensures one bridge with one address exists and is up."""

    def __init__(self, ip: IpLib, name: str, cidr: str, deploy_prefix: str):
        self.ip = ip
        self.name = name
        self.cidr = cidr
        self.mark = f"stratus:{deploy_prefix}"

    def ensure(self) -> None:
        """Make the bridge, its address and its up state be there (nothing when they are)."""
        info = self.ip.link(self.name)
        if info is None:
            LOG.info("external bridge %s is missing (a host boot?): making it again%s",
                     self.name, f" with {self.cidr}" if self.cidr else "")
            self.ip.change(["ip", "link", "add", self.name, "type", "bridge",
                            "forward_delay", "0"], [self.name])
            self.ip.change(["ip", "link", "set", "dev", self.name, "alias", self.mark],
                           [self.name])
            info = self.ip.link(self.name)
        elif info.get("linkinfo", {}).get("info_kind") != "bridge":
            raise DriverError(f"external bridge {self.name}: a device of that name exists "
                              "and is not a bridge (left as it is)")
        if self.cidr and self.cidr not in self.ip.addresses(self.name):
            LOG.info("external bridge %s: adding its address %s", self.name, self.cidr)
            self.ip.change(["ip", "addr", "add", self.cidr, "dev", self.name], [self.name])
        self.ip.ensure_link_settings(self.name, info=info)
