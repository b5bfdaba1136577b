#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_project
short_description: Create, update or delete a project in a Stratus cloud
description:
  - Makes sure the identity service (v3) has a project named O(name), with these attributes and
    role grants, or does not.
  - Grants are only added; a grant made elsewhere is kept.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.2.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name (or ID, to find it) of the project.
    type: str
    required: true
  state:
    description: Whether the project should exist.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Description of the project.
    type: str
  domain_id:
    description: Domain of the project (default the C(default) domain).
    type: str
  enabled:
    description: Whether the project is enabled.
    type: bool
  members:
    description: Users to grant a role on the project.
    type: list
    elements: dict
    suboptions:
      user:
        description: Name or ID of the user.
        type: str
        required: true
      role:
        description: Name of the role.
        type: str
        default: member
  current_user_role:
    description:
      - Grant the user the module authenticates as this role on the project, so that later
        tasks can work in it (the stratus.cloud.provision role uses C(admin)).
    type: str
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A project for the web team, where the admin may work
  stratus.cloud.cloud_project:
    name: web
    description: The web team
    current_user_role: admin
    members:
      - user: alice
        role: member
"""

RETURN = r"""
project:
  description: The project as the identity API shows it (none when absent).
  returned: always
  type: dict
id:
  description: ID of the project (none when absent).
  returned: always
  type: str
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_identity import (  # noqa: E402
    ProjectConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


class CloudProjectModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        domain_id=dict(type="str"),
        enabled=dict(type="bool"),
        members=dict(type="list", elements="dict", options=dict(
            user=dict(type="str", required=True),
            role=dict(type="str", default="member"),
        )),
        current_user_role=dict(type="str"),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = ProjectConvergence


def main():
    CloudProjectModule()()


if __name__ == "__main__":
    main()
