#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_server
short_description: Create, reconcile or delete a server (virtual machine) in a Stratus cloud
description:
  - Makes sure the project has one server (compute API v2.1, C(/servers)) named O(name), booted
    from O(image) with O(flavor) on O(networks), or has none.
  - An existing server of that name is reconciled, never recreated. O(metadata), O(power_state),
    O(security_groups) and O(floating_ip) change in place. What cannot change in place (O(image),
    O(flavor), O(networks), O(key_name), O(availability_zone)) is compared and a difference is
    reported as a warning; the server is left as it is (rebuild and resize are not supported;
    delete the server and run again to recreate it). O(userdata) and O(config_drive) only apply
    when the server is created.
  - Two servers with the name O(name) make the module fail (it would not know which one).
  - With O(wait=true) (the default), creation waits until the server is C(ACTIVE), power
    changes wait for the new status, and deletion waits until the server is gone. A server this
    run created that goes to C(ERROR) fails the module with the server's fault message and is
    deleted again (nothing half-made; the next run tries anew). An existing server in C(ERROR)
    fails the module; delete it with O(state=absent).
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the server (also its hostname), unique in the project.
    type: str
    required: true
  state:
    description:
      - Whether the server should exist. V(absent) deletes it (and with O(wait=true) waits
        until it is gone). A floating IP the module attached with O(floating_ip=auto), or
        allocated for an address, is released first; floating IPs attached otherwise are
        left to the project (detached with the server's ports).
    type: str
    choices: [present, absent]
    default: present
  image:
    description: Name or ID of the image to boot from (an active image the project can see).
    type: str
  flavor:
    description: Name or ID of the flavor.
    type: str
  networks:
    description:
      - Where the server's ports are, in order (the first port gets the floating IP).
      - A list whose items are a network name or ID, or a dict with one of C(net-id),
        C(net-name), C(port-id), C(port-name) (an existing port), and optionally C(fixed_ip)
        (also C(v4-fixed-ip)) with a network.
      - Or the string V(auto) (the cloud picks the project's network) or V(none) (no network).
      - Not given, V(auto).
    type: raw
    aliases: [nics]
  key_name:
    description: Name of the key pair whose public key is injected into the server.
    type: str
  userdata:
    description:
      - User data for cloud-init, as text (the module base64-encodes it). For a file, use
        C(lookup('file', 'path')).
    type: str
  metadata:
    description:
      - The server's metadata (key/value strings), exactly (keys not given are removed). Not
        given, the metadata is left alone.
    type: dict
    aliases: [meta]
  security_groups:
    description:
      - Names (or IDs) of the security groups of the server, exactly (groups not given are
        removed, missing ones added). Not given when creating, the cloud's C(default) group;
        not given for an existing server, left alone.
      - An existing server's groups are read from its ports in the network API and changed
        with the C(addSecurityGroup)/C(removeSecurityGroup) actions, or, where the compute
        API has no such actions, on its ports in the network API.
    type: list
    elements: str
  availability_zone:
    description: Availability zone to boot the server in.
    type: str
  config_drive:
    description: Whether the server gets a config drive (metadata on a disk labelled C(config-2)).
    type: bool
  floating_ip:
    description:
      - V(auto) makes sure the server's first port has a floating IP from O(floating_ip_pool);
        an unattached floating IP of the project is reused first, else one is allocated.
      - An address makes sure that floating IP points at the server's first port (it is
        allocated with that address when the project does not have it). Another floating IP
        of the server is detached first. An address attached to another port is an error.
      - Not given, floating IPs are left alone.
    type: str
  floating_ip_pool:
    description:
      - Name or ID of the external network floating IPs come from. Not given, the one external
        network of the cloud (an error when there are several).
    type: str
  power_state:
    description:
      - The server's power state. V(started) is C(ACTIVE), V(stopped) C(SHUTOFF), V(paused)
        C(PAUSED), V(suspended) C(SUSPENDED).
      - Not given, a new server is started and an existing one is left as it is.
    type: str
    choices: [started, stopped, paused, suspended]
  boot_from_volume:
    description:
      - Boot from a new volume made of O(image) (of O(volume_size) GiB) instead of a local
        disk; the server's C(block_device_mapping_v2) has one mapping with C(boot_index) 0,
        C(source_type) C(image) and C(destination_type) C(volume). Only used when creating.
    type: bool
    default: false
  volume_size:
    description: Size in GiB of the boot volume O(boot_from_volume=true) makes. Needed with it.
    type: int
  boot_volume:
    description:
      - Name or ID of an existing, available volume to boot from (a mapping with
        C(source_type) C(volume)); O(image) is then not needed. Only used when creating.
    type: str
    aliases: [root_volume]
  terminate_volume:
    description:
      - Whether the boot volume (O(boot_from_volume) or O(boot_volume)) is deleted with the
        server (C(delete_on_termination)). Only used when creating.
    type: bool
    default: false
  volumes:
    description:
      - Names or IDs of volumes attached to the server (through C(os-volume_attachments)) once
        it is ACTIVE; an existing server that lacks some gets them attached. Volumes attached
        beyond these are left alone (detach them with M(stratus.cloud.cloud_volume_attachment)).
    type: list
    elements: str
    default: []
  timeout:
    description: How long to wait, in seconds, for the server to be active, change power or go.
    type: int
    default: 600
notes:
  - Supports check mode and diff mode.
  - The module talks to the compute API at microversion 2.47 (or the service's maximum when
    lower).
"""

EXAMPLES = r"""
- name: A web server with a floating IP
  stratus.cloud.cloud_server:
    name: web1
    image: debian-12
    flavor: m1.small
    networks: [app-net]
    key_name: ops
    security_groups: [default, web]
    floating_ip: auto
    metadata:
      role: web
    userdata: "{{ lookup('file', 'cloud-init/web.yml') }}"
  register: web1

- name: Print its address
  ansible.builtin.debug:
    msg: "{{ web1.server.access_ipv4 }}"

- name: A server with a fixed address and an existing port
  stratus.cloud.cloud_server:
    name: db1
    image: debian-12
    flavor: m1.large
    networks:
      - net-name: app-net
        fixed_ip: 192.168.10.50
      - port-name: db1-storage

- name: A server booting from a 5 GiB volume made of the image, with a data volume
  stratus.cloud.cloud_server:
    name: db2
    image: debian-12
    flavor: m1.small
    boot_from_volume: true
    volume_size: 5
    terminate_volume: true
    volumes: [db2-data]

- name: Stop it
  stratus.cloud.cloud_server:
    name: db1
    power_state: stopped

- name: Delete the web server (and its automatic floating IP)
  stratus.cloud.cloud_server:
    name: web1
    state: absent
"""

RETURN = r"""
server:
  description:
    - The server as the compute API shows it (Nova v2.1 fields at microversion 2.47), plus
      C(floating_ip) and C(access_ipv4).
    - Null when O(state=absent), and in check mode when the server does not exist yet.
  returned: always
  type: dict
  contains:
    id:
      description: ID of the server.
      type: str
    status:
      description: Status (C(BUILD), C(ACTIVE), C(SHUTOFF), C(PAUSED), C(SUSPENDED), C(ERROR)).
      type: str
    addresses:
      description: The server's addresses per network name (C(addr), C(version),
        C(OS-EXT-IPS:type), C(OS-EXT-IPS-MAC:mac_addr)).
      type: dict
    floating_ip:
      description: The floating IP of the server (null when it has none).
      type: str
    access_ipv4:
      description: The address to reach the server at, its floating IP, else its first fixed
        IPv4 address.
      type: str
  sample:
    id: 0b8e3c7a-1d2f-4e5a-9b6c-7d8e9f0a1b2c
    name: web1
    status: ACTIVE
    flavor: {original_name: m1.small, vcpus: 1, ram: 2048, disk: 20, ephemeral: 0, swap: 0}
    image: {id: 5b9a2f0e-4a4e-4d8e-9c43-0c1d0bc1f7a5}
    key_name: ops
    metadata: {role: web}
    addresses:
      app-net:
        - {addr: 192.168.10.11, version: 4, OS-EXT-IPS:type: fixed}
        - {addr: 172.24.4.57, version: 4, OS-EXT-IPS:type: floating}
    floating_ip: 172.24.4.57
    access_ipv4: 172.24.4.57
id:
  description: ID of the server (null when there is none).
  returned: always
  type: str
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_server import (  # noqa: E402
    ServerConvergence,
)


class CloudServerModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        image=dict(type="str"),
        flavor=dict(type="str"),
        networks=dict(type="raw", aliases=["nics"]),
        key_name=dict(type="str", no_log=False),
        userdata=dict(type="str"),
        metadata=dict(type="dict", aliases=["meta"]),
        security_groups=dict(type="list", elements="str"),
        availability_zone=dict(type="str"),
        config_drive=dict(type="bool"),
        floating_ip=dict(type="str"),
        floating_ip_pool=dict(type="str"),
        power_state=dict(type="str", choices=["started", "stopped", "paused", "suspended"]),
        boot_from_volume=dict(type="bool", default=False),
        volume_size=dict(type="int"),
        boot_volume=dict(type="str", aliases=["root_volume"]),
        terminate_volume=dict(type="bool", default=False),
        volumes=dict(type="list", elements="str", default=[]),
        timeout=dict(type="int", default=600),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        mutually_exclusive=[("boot_volume", "boot_from_volume")],
    )
    logic = ServerConvergence


def main():
    CloudServerModule()()


if __name__ == "__main__":
    main()
