"""The host side of Stratus: two agents and the host helpers they share.

* :mod:`stratus.agent.network` - the network agent (``stratus-network-agent``): the
  host's bridges, tunnels, DHCP, routers, security groups and metadata proxy;
* :mod:`stratus.agent.compute` - the compute agent (``stratus-compute-agent``): the
  host's servers (libvirt guests, their disks and config drives);
* shared host helpers at this level: :mod:`stratus.agent.runner` (commands, in a
  namespace or not) and :mod:`stratus.agent.ip_lib` (links, addresses, netns, pids).

Agents talk to the services over HTTP only, through
:class:`stratus.common.clients.ApiClient` (both wait for changes with its
``long_poll``), with the documents in :mod:`stratus.contracts`; they never import a
service.
"""
