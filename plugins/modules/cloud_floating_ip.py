#!/usr/bin/python
# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_floating_ip
short_description: Allocate, associate or release a floating IP on a Stratus cloud
description:
  - Makes a floating IP (Neutron v2.0 API) exist on an external network and point at a port,
    or at nothing. A second run changes nothing.
  - The floating IP is identified by O(floating_ip_address) when given, otherwise by the
    port it points at (O(port), with O(fixed_ip_address)).
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  state:
    description: V(present) allocates and associates; V(absent) releases the floating IP.
    type: str
    choices: [present, absent]
    default: present
  network:
    description: Name or ID of the external network to allocate from (needed to allocate).
    type: str
  floating_ip_address:
    description: The floating address to allocate or manage.
    type: str
  port:
    description:
      - Name or ID of the port the floating IP points at (the port's subnet must be connected
        to a router with its gateway on O(network)). An empty string disassociates.
    type: str
  fixed_ip_address:
    description: Which of the port's fixed addresses to point at (default its first).
    type: str
  description:
    description: Description of the floating IP.
    type: str
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A floating IP for the web port
  stratus.cloud.cloud_floating_ip:
    network: public
    port: web1-port
  register: fip

- name: A chosen address, not associated
  stratus.cloud.cloud_floating_ip:
    network: public
    floating_ip_address: 172.24.4.100
    port: ""

- name: Release it
  stratus.cloud.cloud_floating_ip:
    floating_ip_address: 172.24.4.100
    state: absent
"""

RETURN = r"""
floating_ip:
  description: The floating IP as the API shows it (Neutron fields).
  returned: when O(state=present) and not in check mode for a new floating IP
  type: dict
  sample:
    id: 2e4f6a8b-0c1d-4e3f-9a5b-7c9d1e3f5a7b
    floating_ip_address: 172.24.4.57
    fixed_ip_address: 192.168.10.23
    port_id: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
    router_id: 7c1e3f0a-2b4d-4e6f-8a9b-0c1d2e3f4a5b
    status: ACTIVE
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (  # noqa: E402
    StratusError,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    Difference,
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network import (  # noqa: E402
    NetworkApi,
)


def summary(fip):
    return {k: fip.get(k) for k in ("floating_ip_address", "port_id", "fixed_ip_address")}


class FloatingIPConvergence:
    """Computes the difference, then (not in check mode) applies it."""

    def __init__(self, api, params, check_mode):
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()

    def run(self):
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
            if fip is not None:
                self.diff.delete(summary(fip))
                if not self.check_mode:
                    self.api.delete("floatingips", fip["id"])
            return {"changed": self.diff.changed, "diff": self.diff.diff}
        wanted_port = port["id"] if port is not None else (None if p["port"] == "" else ...)
        if fip is None:
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
            if self.check_mode:
                return {"changed": True, "diff": self.diff.diff, "floating_ip": None}
            fip = self.api.create("floatingips", attrs)
            return {"changed": True, "diff": self.diff.diff, "floating_ip": fip}
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
        if changes and not self.check_mode:
            fip = self.api.update("floatingips", fip["id"], changes)
        return {"changed": self.diff.changed, "diff": self.diff.diff, "floating_ip": fip}


class CloudFloatingIPModule(StratusModule):
    argument_spec = dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        network=dict(type="str"),
        floating_ip_address=dict(type="str"),
        port=dict(type="str"),
        fixed_ip_address=dict(type="str"),
        description=dict(type="str"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        return FloatingIPConvergence(NetworkApi(self.client), self.params, self.check_mode).run()


def main():
    CloudFloatingIPModule()()


if __name__ == "__main__":
    main()
