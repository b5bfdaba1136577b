#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_container
short_description: Create, update or delete a container of a Stratus cloud's object store
description:
  - Makes sure the container O(name) of the object store (Swift v1, catalog type
    C(object-store)) exists with the given metadata and ACLs, or does not.
  - Only the metadata keys given are compared and set; O(delete_metadata_keys) removes keys.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the container.
    type: str
    required: true
  state:
    description: Whether the container should exist.
    type: str
    choices: [present, absent]
    default: present
  metadata:
    description: Metadata keys and values the container should have (X-Container-Meta-*).
    type: dict
  delete_metadata_keys:
    description: Metadata keys the container should not have.
    type: list
    elements: str
  read_ACL:
    description:
      - The container's read ACL (X-Container-Read), for example C(.r:*,.rlistings) or
        C(<project>:<user>); an empty string removes it.
    type: str
  write_ACL:
    description: The container's write ACL (X-Container-Write); an empty string removes it.
    type: str
  public:
    description:
      - true sets the read ACL to C(.r:*,.rlistings) (anyone may read and list); false
        removes it unless O(read_ACL) is given.
    type: bool
  delete_with_all_objects:
    description: With O(state=absent), delete the container's objects first (else a
      container that is not empty fails).
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A public container
  stratus.cloud.cloud_container:
    name: www
    public: true
    metadata:
      owner: web

- name: Remove it and everything in it
  stratus.cloud.cloud_container:
    name: www
    state: absent
    delete_with_all_objects: true
"""

RETURN = r"""
container:
  description: The container as the object store shows it.
  returned: always (null when O(state=absent) or, in check mode, before it is made)
  type: dict
  sample:
    name: www
    metadata: {owner: web}
    read_ACL: ".r:*,.rlistings"
    write_ACL: ""
    object_count: 0
    bytes_used: 0
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_object import (  # noqa: E402
    ContainerConvergence,
)


class CloudContainerModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        metadata=dict(type="dict"),
        delete_metadata_keys=dict(type="list", elements="str", no_log=False),
        read_ACL=dict(type="str"),
        write_ACL=dict(type="str"),
        public=dict(type="bool"),
        delete_with_all_objects=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = ContainerConvergence


def main():
    CloudContainerModule()()


if __name__ == "__main__":
    main()
