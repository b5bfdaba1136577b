#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_network_info
short_description: List networks of a Stratus cloud
description:
  - Returns the networks the credentials may see, all of them or those matching O(name) and
    O(filters). Returns an empty list (and does not fail) when nothing matches.
  - Each network also lists its subnets in full under C(subnet_details).
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name or ID of the network(s) to return.
    type: str
    aliases: [id]
  filters:
    description:
      - Filters of the network API's list call (any attribute, for example C(project_id),
        C(status), C(router:external), C(shared)).
    type: dict
notes:
  - This module changes nothing and supports check mode.
"""

EXAMPLES = r"""
- name: Find the network
  stratus.cloud.cloud_network_info:
    name: app-net
  register: found

- name: Every network of a project
  stratus.cloud.cloud_network_info:
    filters:
      project_id: 3b9f2c1d4e5f4a6b8c7d9e0f1a2b3c4d
  register: all_networks
"""

RETURN = r"""
networks:
  description: The matching networks as the API shows them (Neutron fields). Empty when none.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 1f0c7b4e-8a0e-4c53-9a53-0a5b6c1d2e3f
      name: app-net
      status: ACTIVE
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network import (  # noqa: E402
    NetworkInfo,
)


class CloudNetworkInfoModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", aliases=["id"]),
        filters=dict(type="dict"),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = NetworkInfo


def main():
    CloudNetworkInfoModule()()


if __name__ == "__main__":
    main()
