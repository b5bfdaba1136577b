#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_object
short_description: Upload, update or delete an object in a Stratus cloud's object store
description:
  - Makes sure the object O(name) in the container O(container) holds the bytes of
    O(filename) or O(data) and has the given metadata, or does not exist.
  - Unchanged when the object's md5 (its ETag) matches the local bytes and its metadata
    already has the given values; only the metadata differing is set without an upload.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  container:
    description: Name of the container (it must exist; see M(stratus.cloud.cloud_container)).
    type: str
    required: true
  name:
    description: Name of the object.
    type: str
    required: true
  filename:
    description: Path of the local file to upload, on the host the module runs on.
    type: path
  data:
    description: The object's content as text (UTF-8).
    type: str
    aliases: [content]
  content_type:
    description: The object's Content-Type (default guessed by the service from the name).
    type: str
  metadata:
    description: Metadata keys and values the object should have (X-Object-Meta-*).
    type: dict
  state:
    description: Whether the object should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Upload a file
  stratus.cloud.cloud_object:
    container: www
    name: index.html
    filename: files/index.html

- name: A small object from text
  stratus.cloud.cloud_object:
    container: www
    name: robots.txt
    data: "User-agent: *\n"
    metadata:
      source: ansible
"""

RETURN = r"""
object:
  description: The object as the object store shows it.
  returned: always (null when O(state=absent) or, in check mode, before it is made)
  type: dict
  sample:
    container: www
    name: index.html
    etag: 5eb63bbbe01eeed093cb22bb8f5acdc3
    content_length: 11
    content_type: text/html
    metadata: {}
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_object import (  # noqa: E402
    ObjectConvergence,
)


class CloudObjectModule(StratusModule):
    argument_spec = dict(
        container=dict(type="str", required=True),
        name=dict(type="str", required=True),
        filename=dict(type="path"),
        data=dict(type="str", aliases=["content"]),
        content_type=dict(type="str"),
        metadata=dict(type="dict"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module_kwargs = dict(supports_check_mode=True,
                         mutually_exclusive=[("filename", "data")])
    logic = ObjectConvergence


def main():
    CloudObjectModule()()


if __name__ == "__main__":
    main()
