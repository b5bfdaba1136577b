#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

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
author: Stratus developers (!UNKNOWN)
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

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_router import (  # noqa: E402
    RouterConvergence,
)


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
    logic = RouterConvergence


def main():
    CloudRouterModule()()


if __name__ == "__main__":
    main()
