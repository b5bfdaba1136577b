#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

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
author: Stratus developers (!UNKNOWN)
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

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_security_group import (  # noqa: E402
    SecurityGroupConvergence,
)


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
    logic = SecurityGroupConvergence


def main():
    CloudSecurityGroupModule()()


if __name__ == "__main__":
    main()
