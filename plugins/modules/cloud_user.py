#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_user
short_description: Create, update or delete a user in a Stratus cloud
description:
  - Makes sure the identity service (v3) has a user named O(name), with these attributes and
    role grants on projects, or does not.
  - Grants are only added; a grant made elsewhere is kept.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.2.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name (or ID, to find it) of the user.
    type: str
    required: true
  state:
    description: Whether the user should exist.
    type: str
    choices: [present, absent]
    default: present
  password:
    description: Password of the user (set on creation; see O(update_password)).
    type: str
  update_password:
    description: C(on_create) sets the password only when the user is made; C(always) sets it on
      every run (and reports a change).
    type: str
    choices: [on_create, always]
    default: on_create
  email:
    description: E-mail address of the user.
    type: str
  description:
    description: Description of the user.
    type: str
  domain_id:
    description: Domain of the user (default the C(default) domain).
    type: str
  enabled:
    description: Whether the user is enabled.
    type: bool
  default_project:
    description: Name or ID of the user's default project.
    type: str
  roles:
    description: Roles to grant the user on projects.
    type: list
    elements: dict
    suboptions:
      project:
        description: Name or ID of the project.
        type: str
        required: true
      role:
        description: Name of the role.
        type: str
        default: member
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Alice, a member of the web project
  stratus.cloud.cloud_user:
    name: alice
    password: "{{ vault_alice_password }}"
    default_project: web
    roles:
      - project: web
"""

RETURN = r"""
user:
  description: The user as the identity API shows it (none when absent).
  returned: always
  type: dict
id:
  description: ID of the user (none when absent).
  returned: always
  type: str
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_identity import (  # noqa: E402
    UserConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


class CloudUserModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        password=dict(type="str", no_log=True),
        update_password=dict(type="str", default="on_create", choices=["on_create", "always"]),
        email=dict(type="str"),
        description=dict(type="str"),
        domain_id=dict(type="str"),
        enabled=dict(type="bool"),
        default_project=dict(type="str"),
        roles=dict(type="list", elements="dict", options=dict(
            project=dict(type="str", required=True),
            role=dict(type="str", default="member"),
        )),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = UserConvergence


def main():
    CloudUserModule()()


if __name__ == "__main__":
    main()
