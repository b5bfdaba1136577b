#!/usr/bin/python
# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_security_group
short_description: Create, update or delete a security group and its rules on a Stratus cloud
description:
  - Makes a security group (Neutron v2.0 API) look as described, with its rules. A second
    run changes nothing.
  - The group is found by name among the groups of the project of the credentials.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the security group (V(default) is the project's default group).
    type: str
    required: true
  state:
    description: V(present) creates or updates the group; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Description of the group.
    type: str
  project:
    description: ID of the project that owns the group (admins only); default the token's.
    type: str
  rules:
    description:
      - Rules of the group. A rule is identified by all its fields; a listed rule that is
        missing is added. With O(purge_rules), a rule that is not listed is removed (a new
        group starts with the two egress rules C(IPv4) and C(IPv6) to anywhere, which
        O(purge_rules) removes unless they are listed).
    type: list
    elements: dict
    aliases: [security_group_rules]
    suboptions:
      direction:
        description: V(ingress) or V(egress).
        type: str
        choices: [ingress, egress]
        default: ingress
      ethertype:
        description: V(IPv4) or V(IPv6).
        type: str
        choices: [IPv4, IPv6]
        default: IPv4
      protocol:
        description: C(tcp), C(udp), C(icmp), another protocol name or number; none is any.
        type: str
      port_range_min:
        description: First port (ICMP type).
        type: int
      port_range_max:
        description: Last port (ICMP code); default O(rules[].port_range_min) for TCP/UDP.
        type: int
      remote_ip_prefix:
        description: Source (ingress) or destination (egress) CIDR.
        type: str
      remote_group:
        description: Name or ID of the group whose members are the source or destination.
        type: str
      description:
        description: Description of the rule (not used to compare rules).
        type: str
  purge_rules:
    description: Remove the rules O(rules) does not list (only when O(rules) is given).
    type: bool
    default: true
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A group for web servers
  stratus.cloud.cloud_security_group:
    name: web
    description: HTTP and SSH from anywhere
    rules:
      - {direction: egress, ethertype: IPv4}
      - {direction: egress, ethertype: IPv6}
      - {protocol: tcp, port_range_min: 80, remote_ip_prefix: 0.0.0.0/0}
      - {protocol: tcp, port_range_min: 22, remote_ip_prefix: 192.0.2.0/24}
      - {protocol: icmp, remote_ip_prefix: 0.0.0.0/0}

- name: Delete it
  stratus.cloud.cloud_security_group:
    name: web
    state: absent
"""

RETURN = r"""
security_group:
  description: The group as the API shows it, with its C(security_group_rules).
  returned: when O(state=present) and not in check mode for a new group
  type: dict
  sample:
    id: 0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e
    name: web
    security_group_rules:
      - {direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 80,
         port_range_max: 80, remote_ip_prefix: 0.0.0.0/0, remote_group_id: null}
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
    normalize_cidr,
)

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


class SecurityGroupConvergence:
    """Computes the difference, then (not in check mode) applies it."""

    def __init__(self, api, params, check_mode):
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()
        self.project = params["project"] or api.project_id

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

    def run(self):
        group = self.find_group()
        if self.params["state"] == "absent":
            if group is not None:
                self.diff.delete({"name": group["name"], "id": group["id"]})
                if not self.check_mode:
                    self.api.delete("security-groups", group["id"])
            return {"changed": self.diff.changed, "diff": self.diff.diff}
        rules = self.wanted_rules(group)
        if group is None:
            after = {"name": self.params["name"], "rules": [rule_label(r) for r in rules]}
            if self.params["description"] is not None:
                after["description"] = self.params["description"]
            self.diff.create(after)
            if self.check_mode:
                return {"changed": True, "diff": self.diff.diff, "security_group": None}
            attrs = {"name": self.params["name"]}
            if self.params["description"] is not None:
                attrs["description"] = self.params["description"]
            if self.params["project"]:
                attrs["project_id"] = self.params["project"]
            group = self.api.create("security-groups", attrs)
        elif self.params["description"] is not None and self.diff.add(
                "description", group.get("description"), self.params["description"]
        ) and not self.check_mode:
            self.api.update("security-groups", group["id"],
                            {"description": self.params["description"]})
        if self.params["rules"] is not None:
            # A new group's rules are already in the diff (created above).
            self.converge_rules(group, rules, record=not self.diff.after.get("rules"))
        if group.get("id") and not self.check_mode:
            group = self.api.get("security-groups", group["id"]) or group
        return {"changed": self.diff.changed, "diff": self.diff.diff, "security_group": group}

    def converge_rules(self, group, rules, record=True):
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
        if self.check_mode:
            return
        for rule in removes:
            self.api.delete("security-group-rules", rule["id"])
        for rule in adds:
            body = {k: v for k, v in rule.items() if v is not None}
            self.api.create("security-group-rules", {**body, "security_group_id": group["id"]})


class CloudSecurityGroupModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        project=dict(type="str"),
        rules=dict(type="list", elements="dict", aliases=["security_group_rules"], options=dict(
            direction=dict(type="str", default="ingress", choices=["ingress", "egress"]),
            ethertype=dict(type="str", default="IPv4", choices=["IPv4", "IPv6"]),
            protocol=dict(type="str"),
            port_range_min=dict(type="int"),
            port_range_max=dict(type="int"),
            remote_ip_prefix=dict(type="str"),
            remote_group=dict(type="str"),
            description=dict(type="str"),
        )),
        purge_rules=dict(type="bool", default=True),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        return SecurityGroupConvergence(NetworkApi(self.client), self.params,
                                        self.check_mode).run()


def main():
    CloudSecurityGroupModule()()


if __name__ == "__main__":
    main()
