#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_provision_plan
short_description: Check and plan declared Stratus resources before anything changes
description:
  - The first step of the P(stratus.cloud.provision#role) role, usable alone. Reads the cloud,
    never writes it (it never reports a change).
  - Fails, naming the entry, when an entry names a project, network, subnet, image, flavor, key
    pair, security group or volume that is neither declared nor in the cloud.
  - Returns the entries with the ownership marker added (RV(resources)) - metadata or property
    C(stratus_provision=<owner>) on servers, volumes, images and flavors (extra spec); a
    C([stratus_provision:<owner>]) suffix on the description of networks, routers and security
    groups.
  - With O(prune=true), returns in RV(prune) what carries this owner's marker and is no longer
    declared, by kind, in deletion order. Resources without the marker (made by hand) are
    never listed. Projects, users and key pairs are never pruned.
version_added: 0.2.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  owner:
    description: The ownership marker's value; two provisionings with other owners ignore each
      other's resources.
    type: str
    default: provision
  prune:
    description: Whether to list what should be deleted.
    type: bool
    default: false
  projects:
    description: Declared projects (entries of C(stratus_projects)).
    type: list
    elements: dict
  users:
    description:
      - Declared users (entries of C(stratus_users)); a C(password) key is ignored and never
        returned (the provision role leaves it out).
    type: list
    elements: dict
  flavors:
    description: Declared flavors (entries of C(stratus_flavors)).
    type: list
    elements: dict
  images:
    description: Declared images (entries of C(stratus_images)).
    type: list
    elements: dict
  keypairs:
    description: Declared key pairs (entries of C(stratus_keypairs)).
    type: list
    elements: dict
  security_groups:
    description: Declared security groups (entries of C(stratus_security_groups)).
    type: list
    elements: dict
  networks:
    description: Declared networks with their subnets (entries of C(stratus_networks)).
    type: list
    elements: dict
  routers:
    description: Declared routers (entries of C(stratus_routers)).
    type: list
    elements: dict
  volumes:
    description: Declared volumes (entries of C(stratus_volumes)).
    type: list
    elements: dict
  servers:
    description: Declared servers (entries of C(stratus_servers)).
    type: list
    elements: dict
notes:
  - Supports check mode (it never writes).
"""

EXAMPLES = r"""
- name: Check the declared resources
  stratus.cloud.cloud_provision_plan:
    networks: "{{ stratus_networks }}"
    servers: "{{ stratus_servers }}"
    prune: true
  register: plan
"""

RETURN = r"""
resources:
  description:
    - The declared entries by kind, with the ownership marker added.
    - In check mode, only the entries listed in RV(checkable).
  returned: always
  type: dict
create:
  description: By kind, the names of the declared entries the cloud does not have yet.
  returned: always
  type: dict
checkable:
  description: By kind, the names of the declared entries whose references all exist in the
    cloud already (in check mode, the provision role plans only those with their modules).
  returned: always
  type: dict
prune:
  description: By kind (servers, volumes, routers, networks, security_groups, images, flavors),
    the C(name) and C(project) of what this owner made and is no longer declared.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_provision import (  # noqa: E402
    ProvisionPlanInfo,
)


class CloudProvisionPlanModule(StratusModule):
    argument_spec = dict(
        owner=dict(type="str", default="provision"),
        prune=dict(type="bool", default=False),
        projects=dict(type="list", elements="dict"),
        users=dict(type="list", elements="dict"),
        flavors=dict(type="list", elements="dict"),
        images=dict(type="list", elements="dict"),
        keypairs=dict(type="list", elements="dict", no_log=False),
        security_groups=dict(type="list", elements="dict"),
        networks=dict(type="list", elements="dict"),
        routers=dict(type="list", elements="dict"),
        volumes=dict(type="list", elements="dict"),
        servers=dict(type="list", elements="dict"),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = ProvisionPlanInfo


def main():
    CloudProvisionPlanModule()()


if __name__ == "__main__":
    main()
