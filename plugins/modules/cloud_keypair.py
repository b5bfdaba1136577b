#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_keypair
short_description: Import, generate or delete a key pair in a Stratus cloud
description:
  - Makes sure the user has a key pair (compute API v2.1, C(/os-keypairs)) named O(name), or
    does not.
  - With O(public_key) or O(public_key_file) the public key is imported. With neither, the
    cloud generates a key pair and the module returns its private key, once, in
    RV(private_key) (the cloud does not keep it).
  - Key pairs cannot change. When the key pair exists with another public key (the comment
    does not count), the module fails; delete it first or use another name.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the key pair.
    type: str
    required: true
  state:
    description: Whether the key pair should exist.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description: The OpenSSH public key to import (one line).
    type: str
  public_key_file:
    description: Path of the OpenSSH public key to import, on the host the module runs on.
    type: path
  type:
    description: Type of the key pair.
    type: str
    choices: [ssh, x509]
    default: ssh
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Import my key
  stratus.cloud.cloud_keypair:
    name: ops
    public_key_file: ~/.ssh/id_ed25519.pub

- name: Let the cloud generate one
  stratus.cloud.cloud_keypair:
    name: generated
  register: kp

- name: Keep its private key (only returned when it is generated)
  ansible.builtin.copy:
    content: "{{ kp.private_key }}"
    dest: ~/.ssh/generated
    mode: "0600"
  when: kp.private_key is defined
  no_log: true

- name: Remove a key pair
  stratus.cloud.cloud_keypair:
    name: old
    state: absent
"""

RETURN = r"""
keypair:
  description: The key pair as the compute API shows it (without the private key).
  returned: always (null when O(state=absent) or, in check mode, before it is made)
  type: dict
  sample:
    name: ops
    type: ssh
    fingerprint: "2c:6f:c8:7e:3b:42:c1:0e:9d:4a:f1:d2:8b:67:24:1a"
    public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... ops
    user_id: 6e5f4a3b2c1d4e0f9a8b7c6d5e4f3a2b
id:
  description: Name of the key pair (key pairs are known by name).
  returned: always
  type: str
  sample: ops
private_key:
  description:
    - The private key the cloud generated. Only this once; it is not kept.
    - It is secret. Put C(no_log=true) on the task (or register it and write it to a file in
      a task with C(no_log=true)) so that it does not show in the output.
  returned: when the cloud generated the key pair in this run
  type: str
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_keypair import (  # noqa: E402
    KeypairConvergence,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)


class CloudKeypairModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        public_key=dict(type="str"),
        public_key_file=dict(type="path"),
        type=dict(type="str", default="ssh", choices=["ssh", "x509"]),
    )
    module_kwargs = dict(supports_check_mode=True,
                         mutually_exclusive=[("public_key", "public_key_file")])
    logic = KeypairConvergence


def main():
    CloudKeypairModule()()


if __name__ == "__main__":
    main()
