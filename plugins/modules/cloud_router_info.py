#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_router_info
short_description: List routers of a Stratus cloud
description:
  - Returns the routers the credentials may see, all of them or those matching O(name) and
    O(filters). Returns an empty list (and does not fail) when nothing matches.
  - Each router also lists its interfaces (C(port_id), C(subnet_id), C(ip_address)) under
    C(interfaces_info).
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name or ID of the router(s) to return.
    type: str
    aliases: [id]
  filters:
    description:
      - Filters of the network API's list call (any attribute, for example C(project_id),
        C(status)).
    type: dict
notes:
  - This module changes nothing and supports check mode.
"""

EXAMPLES = r"""
- name: Find the router
  stratus.cloud.cloud_router_info:
    name: app-router
  register: found

- name: Every router of a project
  stratus.cloud.cloud_router_info:
    filters:
      project_id: 3b9f2c1d4e5f4a6b8c7d9e0f1a2b3c4d
  register: all_routers
"""

RETURN = r"""
routers:
  description: The matching routers as the API shows them (Neutron fields). Empty when none.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 1f0c7b4e-8a0e-4c53-9a53-0a5b6c1d2e3f
      name: app-router
      status: ACTIVE
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_router import (  # noqa: E402
    RouterInfo,
)


class CloudRouterInfoModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", aliases=["id"]),
        filters=dict(type="dict"),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = RouterInfo


def main():
    CloudRouterInfoModule()()


if __name__ == "__main__":
    main()
