# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_router and cloud_router_info: a router's gateway and interfaces, and the lookup.

``RouterConvergence.plan()`` compares the project's router of that name with
the options (attributes, external gateway with or without SNAT, interfaces on
subnets or ports) and queues the writes; see ``stratus_plan`` for how check
mode and a real run share it.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network import find_for_info
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network_api import (
    NetworkApi,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence


class RouterConvergence(Convergence):
    """The decision logic of cloud_router, over a ``NetworkApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api
        self.project = params["project"] or api.project_id

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params, check_mode)

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

    def plan(self):
        router = self.find_router()
        if self.params["state"] == "absent":
            return self.plan_absent(router)
        attrs = {"name": self.params["name"]}
        for key in ("description", "admin_state_up"):
            if self.params[key] is not None:
                attrs[key] = self.params[key]
        gateway = self.wanted_gateway(router)
        interfaces = None
        if self.params["interfaces"] is not None:
            interfaces = self.wanted_interfaces()
        if router is None:
            return self.plan_create(attrs, gateway, interfaces)
        return self.plan_update(router, attrs, gateway, interfaces)

    def plan_create(self, attrs, gateway, interfaces):
        after = dict(attrs)
        if gateway is not ...:
            after["external_gateway_info"] = gateway
        if interfaces is not None:
            after["interfaces"] = sorted(interfaces.values())
        self.diff.create(after)
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            create = dict(attrs)
            if self.params["project"]:
                create["project_id"] = self.params["project"]
            if gateway is not ...:
                create["external_gateway_info"] = gateway
            router = self.api.create("routers", create)
            for key in interfaces or {}:
                kind, ident = key.split(":", 1)
                self.api.router_interface(router["id"], "add", **{f"{kind}_id": ident})
            return router

        return plan

    def plan_update(self, router, attrs, gateway, interfaces):
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
        plan = self.new_plan(router)

        @plan.then
        def update(current):
            for port_id in removes:
                self.api.router_interface(current["id"], "remove", port_id=port_id)
            if changes:
                self.api.update("routers", current["id"], changes)
            for key in adds:
                kind, ident = key.split(":", 1)
                self.api.router_interface(current["id"], "add", **{f"{kind}_id": ident})
            return current

        return plan

    def plan_absent(self, router):
        plan = self.new_plan(None)
        if router is None:
            return plan
        self.diff.delete({"name": router["name"], "id": router["id"]})

        @plan.then
        def delete(_none):
            for itf in self.api.router_interfaces(router["id"]):
                self.api.router_interface(router["id"], "remove", port_id=itf["port_id"])
            self.api.delete("routers", router["id"])

        return plan

    def result(self, router):
        out = {"changed": self.diff.changed, "diff": self.diff.diff}
        if self.params["state"] == "absent":
            return out
        if router is None:
            return {**out, "router": None, "interfaces": []}
        router = self.api.get("routers", router["id"]) or router
        return {**out, "router": router, "interfaces": self.api.router_interfaces(router["id"])}


class RouterInfo:
    """cloud_router_info: the routers matching an ID or name and the filters, with their
    interfaces (``interfaces_info``)."""

    def __init__(self, api, params):
        self.api = api
        self.params = params

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params)

    def run(self):
        items = find_for_info(self.api, "routers", self.params["name"], self.params["filters"])
        for item in items:
            item["interfaces_info"] = self.api.router_interfaces(item["id"])
        return {"changed": False, "routers": items}
