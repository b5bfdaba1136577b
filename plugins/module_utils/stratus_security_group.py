# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""cloud_security_group: a security group and its rules.

``SecurityGroupConvergence.plan()`` compares the project's group of that name
with the options (description, rules; a rule is identified by all its
fields) and queues the writes; see ``stratus_plan`` for how check mode and a
real run share it.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_client import StratusError
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network_api import (
    NetworkApi,
    normalize_cidr,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_plan import Convergence

RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
             "remote_ip_prefix", "remote_group_id")
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "6", "17", "132")


def rule_key(rule):
    return tuple(rule.get(k) for k in RULE_KEYS)


def rule_label(rule):
    parts = [rule["direction"], rule["ethertype"], rule.get("protocol") or "any"]
    if rule.get("port_range_min") is not None:
        parts.append(f"{rule['port_range_min']}-{rule.get('port_range_max')}")
    if rule.get("remote_ip_prefix"):
        parts.append(f"from/to {rule['remote_ip_prefix']}")
    if rule.get("remote_group_id"):
        parts.append(f"group {rule['remote_group_id']}")
    return " ".join(str(p) for p in parts)


class SecurityGroupConvergence(Convergence):
    """The decision logic of cloud_security_group, over a ``NetworkApi`` (or a fake of it)."""

    def __init__(self, api, params, check_mode):
        super().__init__(params, check_mode)
        self.api = api
        self.project = params["project"] or api.project_id

    @classmethod
    def connect(cls, client, params, check_mode):
        return cls(NetworkApi(client), params, check_mode)

    def find_group(self):
        found = self.api.list("security-groups", {"name": self.params["name"],
                                                  "project_id": self.project})
        if len(found) > 1:
            raise StratusError(f"{len(found)} security groups are named "
                               f"{self.params['name']!r}; use another name.")
        return found[0] if found else None

    def wanted_rules(self, group):
        out = []
        for spec in self.params["rules"] or []:
            protocol = (spec.get("protocol") or "").lower() or None
            if protocol == "any":
                protocol = None
            pmin, pmax = spec.get("port_range_min"), spec.get("port_range_max")
            if protocol in PORT_PROTOCOLS and pmin is not None and pmax is None:
                pmax = pmin
            remote_group = None
            if spec.get("remote_group"):
                if group is not None and spec["remote_group"] in (group["id"], group["name"]):
                    remote_group = group["id"]
                elif spec["remote_group"] == self.params["name"]:
                    remote_group = "<self>"
                else:
                    remote_group = self.api.require("security-groups", spec["remote_group"],
                                                    self.project)["id"]
            prefix = spec.get("remote_ip_prefix")
            out.append({
                "direction": spec.get("direction") or "ingress",
                "ethertype": spec.get("ethertype") or "IPv4",
                "protocol": protocol, "port_range_min": pmin, "port_range_max": pmax,
                "remote_ip_prefix": normalize_cidr(prefix) if prefix else None,
                "remote_group_id": remote_group,
                "description": spec.get("description") or "",
            })
        return out

    def plan(self):
        group = self.find_group()
        if self.params["state"] == "absent":
            plan = self.new_plan(None)
            if group is not None:
                self.diff.delete({"name": group["name"], "id": group["id"]})
                plan.then(lambda _none: self.api.delete("security-groups", group["id"]))
            return plan
        rules = self.wanted_rules(group)
        if group is None:
            return self.plan_create(rules)
        return self.plan_update(group, rules)

    def plan_create(self, rules):
        after = {"name": self.params["name"], "rules": [rule_label(r) for r in rules]}
        if self.params["description"] is not None:
            after["description"] = self.params["description"]
        self.diff.create(after)
        plan = self.new_plan(None)

        @plan.then
        def create(_none):
            attrs = {"name": self.params["name"]}
            if self.params["description"] is not None:
                attrs["description"] = self.params["description"]
            if self.params["project"]:
                attrs["project_id"] = self.params["project"]
            group = self.api.create("security-groups", attrs)
            if self.params["rules"] is not None:
                # The new group's rules are in the diff already, unless none were listed:
                # then the rules the API gave the group (purged) are recorded here.
                adds, removes = self.rules_difference(group, rules,
                                                      record=not after["rules"])
                self.write_rules(group, adds, removes)
            return self.api.get("security-groups", group["id"]) or group

        return plan

    def plan_update(self, group, rules):
        describe = self.params["description"] is not None and self.diff.add(
            "description", group.get("description"), self.params["description"])
        adds, removes = [], []
        if self.params["rules"] is not None:
            adds, removes = self.rules_difference(group, rules)
        plan = self.new_plan(group)

        @plan.then
        def update(current):
            if describe:
                self.api.update("security-groups", current["id"],
                                {"description": self.params["description"]})
            self.write_rules(current, adds, removes)
            return self.api.get("security-groups", current["id"]) or current

        return plan

    def rules_difference(self, group, rules, record=True):
        """(rules to add, rules to remove) of ``group``; recorded in the diff."""
        for rule in rules:
            if rule["remote_group_id"] == "<self>":
                rule["remote_group_id"] = group["id"]
        have = group.get("security_group_rules") or []
        have_keys = {rule_key(r): r for r in have}
        wanted_keys = {rule_key(r) for r in rules}
        adds = [r for r in rules if rule_key(r) not in have_keys]
        removes = [r for k, r in have_keys.items() if k not in wanted_keys] if self.params[
            "purge_rules"] else []
        if (adds or removes) and record:
            self.diff.add("rules", sorted(rule_label(r) for r in have),
                          sorted(rule_label(r) for r in rules) if self.params["purge_rules"]
                          else sorted(rule_label(r) for r in [*have, *adds]))
        return adds, removes

    def write_rules(self, group, adds, removes):
        for rule in removes:
            self.api.delete("security-group-rules", rule["id"])
        for rule in adds:
            body = {k: v for k, v in rule.items() if v is not None}
            self.api.create("security-group-rules", {**body, "security_group_id": group["id"]})

    def result(self, group):
        out = {"changed": self.diff.changed, "diff": self.diff.diff}
        if self.params["state"] == "absent":
            return out
        return {**out, "security_group": group}
