#!/usr/bin/python
# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_router
short_description: Create, update or delete a router on a Stratus cloud
description:
  - Makes a router (Neutron v2.0 API) look as described - its external gateway with or
    without SNAT, and its interfaces on subnets or ports. A second run changes nothing.
  - The router is found by name among the routers of the project of the credentials.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the router.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the router; V(absent) removes its interfaces and
        gateway and deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Description of the router.
    type: str
  project:
    description: ID of the project that owns the router (admins only); default the token's.
    type: str
  admin_state_up:
    description: Administrative state of the router.
    type: bool
  network:
    description:
      - Name or ID of the external network of the router's gateway. An empty string removes
        the gateway; when not given, the gateway is left as it is.
    type: str
  enable_snat:
    description: Whether the router translates its subnets' traffic to its gateway address.
    type: bool
  external_fixed_ips:
    description: Addresses of the gateway on the external network (default one chosen).
    type: list
    elements: dict
    suboptions:
      subnet:
        description: Name or ID of a subnet of the external network.
        type: str
      ip:
        description: The address.
        type: str
  interfaces:
    description:
      - The router's interfaces, all of them - an interface not listed is removed. Each item is
        a subnet name or ID (the router takes the subnet's gateway address), or a dict with
        C(subnet) or C(port) (a port name or ID, for a router address other than the
        gateway). When not given, the interfaces are left as they are.
    type: list
    elements: raw
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A router from app-subnet to the public network
  stratus.cloud.cloud_router:
    name: app-router
    network: public
    interfaces: [app-subnet]

- name: No SNAT, and one interface through a port
  stratus.cloud.cloud_router:
    name: app-router
    network: public
    enable_snat: false
    interfaces:
      - app-subnet
      - port: db-router-port

- name: Delete the router
  stratus.cloud.cloud_router:
    name: app-router
    state: absent
"""

RETURN = r"""
router:
  description: The router as the API shows it (Neutron fields).
  returned: when O(state=present) and not in check mode for a new router
  type: dict
  sample:
    id: 7c1e3f0a-2b4d-4e6f-8a9b-0c1d2e3f4a5b
    name: app-router
    external_gateway_info:
      network_id: 3d5f7a9b-1c2e-4f6a-8b0c-2d4e6f8a0b1c
      enable_snat: true
      external_fixed_ips:
        - subnet_id: 5e7f9a1b-3c4d-4e6f-8a0b-1c2d3e4f5a6b
          ip_address: 172.24.4.10
interfaces:
  description: The router's interfaces (port, subnet, address).
  returned: when O(state=present)
  type: list
  elements: dict
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


class RouterConvergence:
    """Computes the difference, then (not in check mode) applies it."""

    def __init__(self, api, params, check_mode):
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()
        self.project = params["project"] or api.project_id

    def find_router(self):
        found = self.api.list("routers", {"name": self.params["name"],
                                          "project_id": self.project})
        if len(found) > 1:
            raise StratusError(f"{len(found)} routers are named {self.params['name']!r}; "
                               "remove the duplicates or use another name.")
        return found[0] if found else None

    def wanted_gateway(self, router):
        """The external_gateway_info to ask for, or ... when the gateway stays as it is."""
        network = self.params["network"]
        current = (router or {}).get("external_gateway_info")
        if network is None:
            if self.params["enable_snat"] is not None and current:
                return {"network_id": current["network_id"],
                        "enable_snat": self.params["enable_snat"]}
            return ...
        if network == "":
            return None
        net = self.api.require("networks", network)
        info = {"network_id": net["id"], "enable_snat": self.params["enable_snat"]
                if self.params["enable_snat"] is not None else True}
        if self.params["external_fixed_ips"]:
            ips = []
            for item in self.params["external_fixed_ips"]:
                entry = {}
                if item.get("subnet"):
                    entry["subnet_id"] = self.api.require("subnets", item["subnet"])["id"]
                if item.get("ip"):
                    entry["ip_address"] = item["ip"]
                ips.append(entry)
            info["external_fixed_ips"] = ips
        return info

    @staticmethod
    def gateway_matches(current, wanted):
        if current is None or wanted is None:
            return current == wanted
        if current["network_id"] != wanted["network_id"]:
            return False
        if current.get("enable_snat") != wanted["enable_snat"]:
            return False
        for want in wanted.get("external_fixed_ips") or []:
            if not any(all(have.get(k) == v for k, v in want.items())
                       for have in current.get("external_fixed_ips") or []):
                return False
        return True

    def wanted_interfaces(self):
        """{"subnet:<id>" or "port:<id>": label} of what O(interfaces) asks for."""
        out = {}
        for item in self.params["interfaces"]:
            if isinstance(item, str):
                item = {"subnet": item}
            if not isinstance(item, dict) or len(set(item) & {"subnet", "port"}) != 1:
                raise StratusError(f"interfaces: {item!r} must be a subnet name or ID, or a "
                                   "dict with exactly one of 'subnet' or 'port'.")
            if "subnet" in item:
                sub = self.api.require("subnets", str(item["subnet"]))
                out[f"subnet:{sub['id']}"] = f"subnet {sub['name'] or sub['id']}"
            else:
                port = self.api.require("ports", str(item["port"]))
                out[f"port:{port['id']}"] = f"port {port['name'] or port['id']}"
        return out

    def run(self):
        router = self.find_router()
        if self.params["state"] == "absent":
            return self.absent(router)
        attrs = {"name": self.params["name"]}
        for key in ("description", "admin_state_up"):
            if self.params[key] is not None:
                attrs[key] = self.params[key]
        gateway = self.wanted_gateway(router)
        interfaces = None
        if self.params["interfaces"] is not None:
            interfaces = self.wanted_interfaces()
        if router is None:
            after = dict(attrs)
            if gateway is not ...:
                after["external_gateway_info"] = gateway
            if interfaces is not None:
                after["interfaces"] = sorted(interfaces.values())
            self.diff.create(after)
            if self.check_mode:
                return {"changed": True, "diff": self.diff.diff, "router": None,
                        "interfaces": []}
            create = dict(attrs)
            if self.params["project"]:
                create["project_id"] = self.params["project"]
            if gateway is not ...:
                create["external_gateway_info"] = gateway
            router = self.api.create("routers", create)
            for key in interfaces or {}:
                kind, ident = key.split(":", 1)
                self.api.router_interface(router["id"], "add", **{f"{kind}_id": ident})
            return self.result(router)
        changes = {k: v for k, v in attrs.items() if self.diff.add(k, router.get(k), v)}
        current_gw = router.get("external_gateway_info")
        if gateway is not ... and not self.gateway_matches(current_gw, gateway):
            self.diff.add("external_gateway_info", current_gw, gateway)
            changes["external_gateway_info"] = gateway
        adds, removes = [], []
        if interfaces is not None:
            have = self.api.router_interfaces(router["id"])
            have_keys = {f"subnet:{i['subnet_id']}" for i in have} | {
                f"port:{i['port_id']}" for i in have}
            for key in interfaces:
                if key not in have_keys:
                    adds.append(key)
            wanted_keys = set(interfaces)
            for itf in have:
                if (f"subnet:{itf['subnet_id']}" not in wanted_keys
                        and f"port:{itf['port_id']}" not in wanted_keys):
                    removes.append(itf["port_id"])
            removes = sorted(set(removes))
            if adds or removes:
                before = sorted(f"subnet {i['subnet_id']}" for i in have)
                self.diff.add("interfaces", before,
                              sorted(interfaces[k] for k in interfaces))
        if not self.check_mode:
            for port_id in removes:
                self.api.router_interface(router["id"], "remove", port_id=port_id)
            if changes:
                self.api.update("routers", router["id"], changes)
            for key in adds:
                kind, ident = key.split(":", 1)
                self.api.router_interface(router["id"], "add", **{f"{kind}_id": ident})
        return self.result(router)

    def result(self, router):
        router = self.api.get("routers", router["id"]) or router
        return {"changed": self.diff.changed, "diff": self.diff.diff, "router": router,
                "interfaces": self.api.router_interfaces(router["id"])}

    def absent(self, router):
        if router is None:
            return {"changed": False, "diff": self.diff.diff}
        self.diff.delete({"name": router["name"], "id": router["id"]})
        if not self.check_mode:
            for itf in self.api.router_interfaces(router["id"]):
                self.api.router_interface(router["id"], "remove", port_id=itf["port_id"])
            self.api.delete("routers", router["id"])
        return {"changed": True, "diff": self.diff.diff}


class CloudRouterModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        project=dict(type="str"),
        admin_state_up=dict(type="bool"),
        network=dict(type="str"),
        enable_snat=dict(type="bool"),
        external_fixed_ips=dict(type="list", elements="dict", options=dict(
            subnet=dict(type="str"),
            ip=dict(type="str"),
        )),
        interfaces=dict(type="list", elements="raw"),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        return RouterConvergence(NetworkApi(self.client), self.params, self.check_mode).run()


def main():
    CloudRouterModule()()


if __name__ == "__main__":
    main()
