#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

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
author: Stratus developers (!UNKNOWN)
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

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_floating_ip import (  # noqa: E402
    FloatingIPConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


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
    logic = FloatingIPConvergence


def main():
    CloudFloatingIPModule()()


if __name__ == "__main__":
    main()
