# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_server's floating IP: which one it wants, and attaching it to the server's port.

``ServerFloatingIp.plan`` records the change in the server's ``Difference``
(reads only) and returns the function that applies it; ``attach`` is also
how a new server gets its floating IP. One that cloud_server allocated is
marked (``AUTO_FIP_MARK``) and released with the server.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server_helpers import (
    AUTO_FIP_MARK,
)


class ServerFloatingIp:
    """The floating IP options of cloud_server over a NetworkApi, recorded in ``diff``."""

    def __init__(self, network, params, diff):
        self.network = network
        self.params = params
        self.diff = diff

    def pool(self):
        """The external network to allocate from: floating_ip_pool, else the only one."""
        pool = self.params.get("floating_ip_pool")
        if pool:
            net = self.network.find("networks", pool)
            if net is None:
                raise StratusError(f"floating_ip_pool network {pool!r} was not found.")
            return net
        externals = self.network.list("networks", {"router:external": True})
        if len(externals) != 1:
            names = ", ".join(n.get("name") or n["id"] for n in externals) or "none"
            raise StratusError(
                f"floating_ip: there are {len(externals)} external networks ({names}); name "
                "the one to use in floating_ip_pool."
            )
        return externals[0]

    def plan(self, server):
        """Record the floating IP change in the diff; return the function applying it."""
        wanted = self.params["floating_ip"]
        ports = self.network.list("ports", {"device_id": server["id"]})
        if not ports:
            raise StratusError(f"Server {server['id']} has no port yet; a floating IP needs one "
                               "(wait for the server to be ACTIVE).")
        attached = []
        for port in ports:
            attached.extend(self.network.list("floatingips", {"port_id": port["id"]}))
        current = [f["floating_ip_address"] for f in attached]
        if wanted == "auto":
            if attached:
                return None
        elif wanted in current:
            return None
        else:
            ids = [x["id"] for x in ports]
            for fip in self.network.list("floatingips", {"floating_ip_address": wanted}):
                if fip.get("port_id") and fip["port_id"] not in ids:
                    raise StratusError(f"Floating IP {wanted} is attached to another port "
                                       f"({fip['port_id']}); detach it first.")
        self.diff.add("floating_ip", current[0] if current else None, wanted)

        def apply():
            self.attach(server, None, ports=ports)

        return apply

    def attach(self, server, net, ports=None):
        wanted = self.params["floating_ip"]
        if ports is None:
            ports = self.network.list("ports", {"device_id": server["id"]})
        if not ports:
            raise StratusError(f"Server {server['id']} has no port; cannot attach a floating IP.")
        port = ports[0]
        if wanted != "auto":
            # Another floating IP of the server goes first (one per fixed IP); one the
            # module allocated is released, others are only detached.
            for p in ports:
                for other in self.network.list("floatingips", {"port_id": p["id"]}):
                    if other["floating_ip_address"] == wanted:
                        continue
                    if (other.get("description") or "") == AUTO_FIP_MARK + server["id"]:
                        self.network.delete("floatingips", other["id"])
                    else:
                        self.network.update("floatingips", other["id"], {"port_id": None})
            found = self.network.list("floatingips", {"floating_ip_address": wanted})
            if found:
                fip = found[0]
                if fip.get("port_id") and fip["port_id"] not in [x["id"] for x in ports]:
                    raise StratusError(f"Floating IP {wanted} is attached to another port "
                                       f"({fip['port_id']}).")
                if fip.get("port_id") != port["id"]:
                    self.network.update("floatingips", fip["id"], {"port_id": port["id"]})
                return
            net = net or self.pool()
            self.network.create("floatingips", {
                "floating_network_id": net["id"], "floating_ip_address": wanted,
                "port_id": port["id"], "description": AUTO_FIP_MARK + server["id"]})
            return
        for p in ports:
            if self.network.list("floatingips", {"port_id": p["id"]}):
                return
        net = net or self.pool()
        free = [f for f in self.network.list("floatingips", {
            "floating_network_id": net["id"], "project_id": self.network.project_id})
            if not f.get("port_id")]
        if free:
            self.network.update("floatingips", free[0]["id"], {
                "port_id": port["id"], "description": AUTO_FIP_MARK + server["id"]})
            return
        self.network.create("floatingips", {
            "floating_network_id": net["id"], "port_id": port["id"],
            "description": AUTO_FIP_MARK + server["id"]})
