# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_floating_ip: a floating IP on an external network, pointing at a port or nothing.

``FloatingIPConvergence.plan()`` finds the floating IP (by its address, else
by the port it points at), compares it with the options and queues the
allocation, update or release; see ``stratus_plan`` for how check mode and a
real run share it.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network_api import (
    NetworkApi,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence


def summary(fip):
    return {k: fip.get(k) for k in ("floating_ip_address", "port_id", "fixed_ip_address")}


class FloatingIPConvergence(Convergence):
    """The decision logic of cloud_floating_ip, over a ``NetworkApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params, check_mode)

    def plan(self):
        p = self.params
        port = None
        if p["port"]:
            port = self.api.require("ports", p["port"])
        if p["floating_ip_address"]:
            found = self.api.list("floatingips",
                                  {"floating_ip_address": p["floating_ip_address"]})
        elif port is not None:
            query = {"port_id": port["id"]}
            if p["fixed_ip_address"]:
                query["fixed_ip_address"] = p["fixed_ip_address"]
            found = self.api.list("floatingips", query)
        else:
            raise StratusError("Give floating_ip_address or port to say which floating IP "
                               "this is.")
        fip = found[0] if found else None
        if p["state"] == "absent":
            plan = self.new_plan(None)
            if fip is not None:
                self.diff.delete(summary(fip))
                plan.then(lambda _none: self.api.delete("floatingips", fip["id"]))
            return plan
        wanted_port = port["id"] if port is not None else (None if p["port"] == "" else ...)
        if fip is None:
            return self.plan_create(wanted_port)
        return self.plan_update(fip, wanted_port)

    def plan_create(self, wanted_port):
        p = self.params
        if not p["network"]:
            raise StratusError("network (the external network to allocate from) is "
                               "needed to allocate a floating IP.")
        net = self.api.require("networks", p["network"])
        attrs = {"floating_network_id": net["id"]}
        if p["floating_ip_address"]:
            attrs["floating_ip_address"] = p["floating_ip_address"]
        if wanted_port not in (None, ...):
            attrs["port_id"] = wanted_port
            if p["fixed_ip_address"]:
                attrs["fixed_ip_address"] = p["fixed_ip_address"]
        if p["description"] is not None:
            attrs["description"] = p["description"]
        self.diff.create({**attrs, "port": p["port"]} if p["port"] else attrs)
        plan = self.new_plan(None)
        plan.then(lambda _none: self.api.create("floatingips", attrs))
        return plan

    def plan_update(self, fip, wanted_port):
        p = self.params
        changes = {}
        if wanted_port is not ... and self.diff.add("port_id", fip.get("port_id"), wanted_port):
            changes["port_id"] = wanted_port
        if (wanted_port not in (None, ...) and p["fixed_ip_address"]
                and self.diff.add("fixed_ip_address", fip.get("fixed_ip_address"),
                                  p["fixed_ip_address"])):
            changes["port_id"] = wanted_port
            changes["fixed_ip_address"] = p["fixed_ip_address"]
        if p["description"] is not None and self.diff.add(
                "description", fip.get("description"), p["description"]):
            changes["description"] = p["description"]
        plan = self.new_plan(fip)
        if changes:
            plan.then(lambda current: self.api.update("floatingips", current["id"], changes))
        return plan

    def result(self, fip):
        out = {"changed": self.diff.changed, "diff": self.diff.diff}
        if self.params["state"] == "absent":
            return out
        return {**out, "floating_ip": fip}
