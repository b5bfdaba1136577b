#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_server_info
short_description: List servers of a Stratus cloud
description:
  - Returns the servers (detailed, compute API v2.1) the credentials may see, all of them or
    those matching O(server) and O(filters). Returns an empty list (and does not fail) when
    nothing matches.
  - Each server also has C(floating_ip) and C(access_ipv4), as M(stratus.cloud.cloud_server)
    returns them.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  server:
    description: Name or ID of the server(s) to return (a name matches exactly).
    type: str
    aliases: [name]
  filters:
    description:
      - Filters of the compute API's server list (for example C(status), C(flavor), C(image),
        C(host) for admins, C(changes-since), C(ip)).
    type: dict
  all_projects:
    description: Servers of every project (admins only).
    type: bool
    default: false
notes:
  - This module changes nothing and supports check mode.
"""

EXAMPLES = r"""
- name: One server
  stratus.cloud.cloud_server_info:
    server: web1
  register: found

- name: The stopped servers of every project
  stratus.cloud.cloud_server_info:
    all_projects: true
    filters:
      status: SHUTOFF
  register: stopped
"""

RETURN = r"""
servers:
  description:
    - The matching servers as the compute API shows them (Nova fields), each with
      C(floating_ip) and C(access_ipv4). Empty when none.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 0b8e3c7a-1d2f-4e5a-9b6c-7d8e9f0a1b2c
      name: web1
      status: ACTIVE
      floating_ip: 172.24.4.57
      access_ipv4: 172.24.4.57
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server import (  # noqa: E402
    ServerInfo,
)


class CloudServerInfoModule(StratusModule):
    argument_spec = dict(
        server=dict(type="str", aliases=["name"]),
        filters=dict(type="dict"),
        all_projects=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = ServerInfo


def main():
    CloudServerInfoModule()()


if __name__ == "__main__":
    main()
