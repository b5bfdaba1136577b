#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_flavor
short_description: Create or delete a flavor of a Stratus cloud, with its extra specs and access
description:
  - Makes sure a flavor (compute API v2.1, C(/flavors)) named O(name) exists with the given
    size, extra specs and project access, or does not exist. Needs the admin role.
  - Flavors cannot change in the compute API. When an existing flavor's O(ram), O(vcpus),
    O(disk), O(ephemeral), O(swap) or O(is_public) differ from those given, the module fails
    and says what differs, unless O(recreate=true); then the flavor is deleted and created
    again with the same ID (servers already running keep their copy of the old flavor).
  - O(extra_specs) and O(projects) are reconciled in place (keys set and unset, projects
    given and taken access).
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the flavor.
    type: str
    required: true
  state:
    description: Whether the flavor should exist.
    type: str
    choices: [present, absent]
    default: present
  id:
    description:
      - ID of the flavor to create (any string, for example V(1) or a UUID). By default the
        cloud chooses a UUID.
      - When given, the flavor is also looked up by it; a flavor of that ID with another name
        is an error.
    type: str
    aliases: [flavorid]
  ram:
    description: Memory in MiB. Needed to create the flavor.
    type: int
  vcpus:
    description: Number of virtual CPUs. Needed to create the flavor.
    type: int
  disk:
    description: Size of the root disk in GiB (V(0) means the size of the image).
    type: int
  ephemeral:
    description: Size of the ephemeral disk in GiB.
    type: int
  swap:
    description: Size of the swap disk in MiB.
    type: int
  is_public:
    description:
      - Whether every project may use the flavor. A private flavor is usable by the projects
        in O(projects) (and by admins).
      - The cloud's default (V(true)) when creating without it.
    type: bool
  extra_specs:
    description:
      - The flavor's extra specs, exactly (keys not given are removed). Values are turned
        into strings. Not given, the extra specs are left alone.
    type: dict
  projects:
    description:
      - Names or IDs of the projects that may use a private flavor, exactly (others lose
        access). Not given, access is left alone. Only for O(is_public=false).
    type: list
    elements: str
  recreate:
    description:
      - Delete and recreate the flavor (same ID) when its size or visibility differs,
        instead of failing.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A small flavor
  stratus.cloud.cloud_flavor:
    name: m1.small
    id: "2"
    ram: 2048
    vcpus: 1
    disk: 20

- name: A private flavor for one project, with extra specs
  stratus.cloud.cloud_flavor:
    name: db.large
    ram: 16384
    vcpus: 4
    disk: 80
    is_public: false
    projects: [databases]
    extra_specs:
      hw:cpu_policy: dedicated

- name: Remove a flavor
  stratus.cloud.cloud_flavor:
    name: m1.huge
    state: absent
"""

RETURN = r"""
flavor:
  description:
    - The flavor as the compute API shows it, plus its C(extra_specs).
    - Null when O(state=absent), and in check mode when the flavor does not exist yet.
  returned: always
  type: dict
  sample:
    id: "2"
    name: m1.small
    ram: 2048
    vcpus: 1
    disk: 20
    swap: ""
    OS-FLV-EXT-DATA:ephemeral: 0
    os-flavor-access:is_public: true
    rxtx_factor: 1.0
    extra_specs: {}
id:
  description: ID of the flavor (null when there is none).
  returned: always
  type: str
  sample: "2"
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_flavor import (  # noqa: E402
    FlavorConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


class CloudFlavorModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        id=dict(type="str", aliases=["flavorid"]),
        ram=dict(type="int"),
        vcpus=dict(type="int"),
        disk=dict(type="int"),
        ephemeral=dict(type="int"),
        swap=dict(type="int"),
        is_public=dict(type="bool"),
        extra_specs=dict(type="dict"),
        projects=dict(type="list", elements="str"),
        recreate=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = FlavorConvergence


def main():
    CloudFlavorModule()()


if __name__ == "__main__":
    main()
