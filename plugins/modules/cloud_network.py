#!/usr/bin/python
# Copyright: Stratus developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_network
short_description: Create, update or delete a network and its subnets on a Stratus cloud
description:
  - Makes a network (Neutron v2.0 API) look as described, with the subnets listed in
    O(subnets), in one task. A second run with the same options changes nothing.
  - The network is found by name among the networks of the project of the credentials (or
    O(project)); a subnet by name among the network's subnets.
  - Check mode and diff mode report exactly what a real run changes.
version_added: 0.1.0
author: Stratus developers (!UNKNOWN)
extends_documentation_fragment:
  - stratus.cloud.auth
options:
  name:
    description: Name of the network.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the network and its subnets; V(absent) deletes the
        network with its subnets (it fails while ports other than DHCP ones are on it).
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Description of the network.
    type: str
  project:
    description: ID of the project that owns the network (admins only); default the token's.
    type: str
  admin_state_up:
    description: Administrative state of the network.
    type: bool
  shared:
    description: Whether every project may use the network (admins only).
    type: bool
  external:
    description: Whether the network is external (router gateways, floating IPs; admins only).
    type: bool
  provider_network_type:
    description:
      - V(flat), V(vxlan) or V(gre) (admins only); default the cloud's tunnel type. Cannot
        change once the network exists.
    type: str
    choices: [flat, vxlan, gre]
  provider_physical_network:
    description: Physical network of a V(flat) network.
    type: str
  provider_segmentation_id:
    description: VNI or GRE key of a tunnel network; default one from the configured range.
    type: int
  mtu:
    description: MTU of the network; default the largest the network type allows.
    type: int
  port_security_enabled:
    description: Default port security of the network's ports.
    type: bool
  subnets:
    description:
      - Subnets of the network, by name. A subnet listed here is created or updated; with
        O(purge_subnets) a subnet not listed is deleted.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the subnet.
        type: str
        required: true
      cidr:
        description: IPv4 network of the subnet, for example C(192.168.10.0/24). Cannot change.
        type: str
        required: true
      gateway_ip:
        description: Gateway address; default the first address of O(subnets[].cidr).
        type: str
      disable_gateway_ip:
        description: No gateway on this subnet.
        type: bool
        default: false
      enable_dhcp:
        description: Whether the network's DHCP server serves this subnet.
        type: bool
        default: true
      allocation_pools:
        description: Ranges addresses are given from; default the whole subnet but the gateway.
        type: list
        elements: dict
        suboptions:
          start:
            description: First address of the range.
            type: str
            required: true
          end:
            description: Last address of the range.
            type: str
            required: true
      dns_nameservers:
        description: DNS servers handed out by DHCP.
        type: list
        elements: str
      host_routes:
        description: Routes handed out by DHCP.
        type: list
        elements: dict
        suboptions:
          destination:
            description: Destination CIDR.
            type: str
            required: true
          nexthop:
            description: Next hop address.
            type: str
            required: true
      description:
        description: Description of the subnet.
        type: str
  purge_subnets:
    description: Delete the network's subnets that O(subnets) does not list.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: A tenant network with one subnet
  stratus.cloud.cloud_network:
    name: app-net
    subnets:
      - name: app-subnet
        cidr: 192.168.10.0/24
        dns_nameservers: [192.168.10.1]

- name: The external network (admin)
  stratus.cloud.cloud_network:
    name: public
    external: true
    provider_network_type: flat
    provider_physical_network: public
    subnets:
      - name: public-subnet
        cidr: 172.24.4.0/24
        enable_dhcp: false
        allocation_pools:
          - start: 172.24.4.10
            end: 172.24.4.250

- name: Remove a network
  stratus.cloud.cloud_network:
    name: old-net
    state: absent
"""

RETURN = r"""
network:
  description: The network as the API shows it (Neutron fields); absent when deleted.
  returned: when O(state=present)
  type: dict
  sample:
    id: 1f0c7b4e-8a0e-4c53-9a53-0a5b6c1d2e3f
    name: app-net
    status: ACTIVE
    mtu: 1450
    subnets: [6a2d8c1e-55c4-4f0b-8d5a-9b1e2f3a4b5c]
subnets:
  description: The network's subnets as the API shows them.
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - id: 6a2d8c1e-55c4-4f0b-8d5a-9b1e2f3a4b5c
      name: app-subnet
      cidr: 192.168.10.0/24
      gateway_ip: 192.168.10.1
diff:
  description: What changed (or would change in check mode), before and after.
  returned: always
  type: dict
"""

from ansible_collections.stratus.cloud.plugins.module_utils.stratus_module import (  # noqa: E402
    StratusModule,
)
from ansible_collections.stratus.cloud.plugins.module_utils.stratus_network import (  # noqa: E402
    NetworkConvergence,
)


class CloudNetworkModule(StratusModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        project=dict(type="str"),
        admin_state_up=dict(type="bool"),
        shared=dict(type="bool"),
        external=dict(type="bool"),
        provider_network_type=dict(type="str", choices=["flat", "vxlan", "gre"]),
        provider_physical_network=dict(type="str"),
        provider_segmentation_id=dict(type="int"),
        mtu=dict(type="int"),
        port_security_enabled=dict(type="bool"),
        subnets=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            cidr=dict(type="str", required=True),
            gateway_ip=dict(type="str"),
            disable_gateway_ip=dict(type="bool", default=False),
            enable_dhcp=dict(type="bool", default=True),
            allocation_pools=dict(type="list", elements="dict", options=dict(
                start=dict(type="str", required=True),
                end=dict(type="str", required=True),
            )),
            dns_nameservers=dict(type="list", elements="str"),
            host_routes=dict(type="list", elements="dict", options=dict(
                destination=dict(type="str", required=True),
                nexthop=dict(type="str", required=True),
            )),
            description=dict(type="str"),
        )),
        purge_subnets=dict(type="bool", default=False),
    )
    module_kwargs = dict(supports_check_mode=True)
    logic = NetworkConvergence


def main():
    CloudNetworkModule()()


if __name__ == "__main__":
    main()
