# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_network and cloud_network_info: a network with its subnets, and the lookup.

``NetworkConvergence.plan()`` compares the project's network of that name
and its subnets with the options and queues the creates, updates and
deletes; see ``stratus_plan`` for how check mode and a real run share it.
``find_for_info`` is the lookup of every ``*_info`` module of the network API.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import (
    StratusError,
    query_value,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network_api import (
    NetworkApi,
    normalize_cidr,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence

NETWORK_OPTIONS = {
    "description": "description",
    "admin_state_up": "admin_state_up",
    "shared": "shared",
    "external": "router:external",
    "mtu": "mtu",
    "port_security_enabled": "port_security_enabled",
}
PROVIDER_OPTIONS = {
    "provider_network_type": "provider:network_type",
    "provider_physical_network": "provider:physical_network",
    "provider_segmentation_id": "provider:segmentation_id",
}


def wanted_subnet(spec):
    """The API attributes a subnet spec asks for (None: leave as it is)."""
    out = {"name": spec["name"], "cidr": normalize_cidr(spec["cidr"]),
           "enable_dhcp": spec.get("enable_dhcp", True)}
    if spec.get("disable_gateway_ip"):
        out["gateway_ip"] = None
    elif spec.get("gateway_ip"):
        out["gateway_ip"] = spec["gateway_ip"]
    if spec.get("allocation_pools") is not None:
        out["allocation_pools"] = [{"start": p["start"], "end": p["end"]}
                                   for p in spec["allocation_pools"]]
    for key in ("dns_nameservers", "host_routes", "description"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    if out.get("host_routes") is not None:
        out["host_routes"] = [{"destination": normalize_cidr(r["destination"]),
                               "nexthop": r["nexthop"]} for r in out["host_routes"]]
    return out


def subnet_view(subnet):
    keys = ("name", "cidr", "gateway_ip", "enable_dhcp", "allocation_pools",
            "dns_nameservers", "host_routes", "description")
    return {k: subnet.get(k) for k in keys}


class NetworkConvergence(Convergence):
    """The decision logic of cloud_network, over a ``NetworkApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params, check_mode)

    def find_network(self):
        project = self.params["project"] or self.api.project_id
        found = self.api.list("networks", {"name": self.params["name"], "project_id": project})
        if len(found) > 1:
            raise StratusError(f"{len(found)} networks are named {self.params['name']!r} in "
                               f"project {project}; remove the duplicates or use another name.")
        return found[0] if found else None

    def result(self, shown):
        out = {"changed": self.diff.changed, "diff": self.diff.diff}
        if self.params["state"] == "absent":
            return out
        shown = shown or {"network": None, "subnets": []}
        return {**out, "network": shown["network"], "subnets": shown["subnets"]}

    def plan(self):
        net = self.find_network()
        if self.params["state"] == "absent":
            plan = self.new_plan(None)
            if net is not None:
                self.diff.delete({"name": net["name"], "id": net["id"]})
                plan.then(lambda _none: self.api.delete("networks", net["id"]))
            return plan
        wanted = {"name": self.params["name"]}
        for option, attr in {**NETWORK_OPTIONS, **PROVIDER_OPTIONS}.items():
            if self.params[option] is not None:
                wanted[attr] = self.params[option]
        if self.params["project"]:
            wanted["project_id"] = self.params["project"]
        specs = [wanted_subnet(s) for s in self.params["subnets"] or []]
        names = [s["name"] for s in specs]
        if len(set(names)) != len(names):
            raise StratusError("subnets: every subnet needs its own name.")
        if net is None:
            return self.plan_create(wanted, specs)
        return self.plan_update(net, wanted, specs)

    def plan_create(self, wanted, specs):
        self.diff.create({**wanted, "subnets": specs})
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            net = self.api.create("networks", wanted)
            try:
                subnets = [self.api.create("subnets", {**s, "network_id": net["id"]})
                           for s in specs]
            except StratusError:
                self.api.delete("networks", net["id"])  # leave nothing half-created
                raise
            return {"network": self.api.get("networks", net["id"]), "subnets": subnets}

        return plan

    def plan_update(self, net, wanted, specs):
        changes = {}
        for attr, value in wanted.items():
            if attr in PROVIDER_OPTIONS.values() or attr == "project_id":
                if attr in net and net[attr] != value:
                    raise StratusError(f"{attr} of network {net['name']!r} is {net[attr]!r} and "
                                       f"cannot change to {value!r}; delete and recreate it.")
                continue
            if self.diff.add(attr, net.get(attr), value):
                changes[attr] = value
        current = {s["name"]: s for s in self.api.list("subnets", {"network_id": net["id"]})}
        creates, updates, deletes = [], [], []
        for spec in specs:
            have = current.get(spec["name"])
            if have is None:
                creates.append(spec)
                self.diff.add(f"subnet {spec['name']}", None, spec)
                continue
            if have["cidr"] != spec["cidr"]:
                raise StratusError(f"subnet {spec['name']!r} has cidr {have['cidr']} and cannot "
                                   f"change to {spec['cidr']}; delete and recreate it.")
            delta = {k: v for k, v in spec.items() if k != "cidr" and have.get(k) != v}
            if delta:
                before = subnet_view(have)
                self.diff.add(f"subnet {spec['name']}", before, {**before, **delta})
                updates.append((have["id"], delta))
        if self.params["purge_subnets"]:
            listed = {s["name"] for s in specs}
            for name, have in current.items():
                if name not in listed:
                    deletes.append(have["id"])
                    self.diff.add(f"subnet {name}", subnet_view(have), None)

        def show(network):
            subnets = self.api.list("subnets", {"network_id": network["id"]})
            return {"network": network, "subnets": subnets}

        plan = self.new_plan(net, finish=show)

        @plan.then
        def update(network):
            if changes:
                network = self.api.update("networks", network["id"], changes)
            for subnet_id in deletes:
                self.api.delete("subnets", subnet_id)
            for subnet_id, delta in updates:
                self.api.update("subnets", subnet_id, delta)
            for spec in creates:
                self.api.create("subnets", {**spec, "network_id": network["id"]})
            if self.diff.changed:
                network = self.api.get("networks", network["id"])
            return network

        return plan


def find_for_info(api, collection, wanted, filters):
    """What an ``*_info`` module returns: the items of ``collection`` matching
    ``filters``, narrowed to ``wanted`` (an ID, else a name) when given."""
    query = dict((k, query_value(v)) for k, v in (filters or {}).items())
    if not wanted:
        return api.list(collection, query)
    return api.list(collection, dict(query, id=wanted)) or api.list(
        collection, dict(query, name=wanted))


class NetworkInfo:
    """cloud_network_info: the networks matching an ID or name and the filters, with
    their subnets (``subnet_details``)."""

    def __init__(self, api, params):
        self.api = api
        self.params = params

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params)

    def run(self):
        items = find_for_info(self.api, "networks", self.params["name"], self.params["filters"])
        for item in items:
            item["subnet_details"] = self.api.list("subnets", {"network_id": item["id"]})
        return {"changed": False, "networks": items}
