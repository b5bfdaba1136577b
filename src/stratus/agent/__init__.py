"""The host side of Stratus: two agents and the host helpers they share.

* :mod:`stratus.agent.network` - the network agent (``stratus-network-agent``);
* the compute agent (``stratus-compute-agent``);
* shared host helpers at this level: :mod:`stratus.agent.runner` (commands, in a
  namespace or not) and :mod:`stratus.agent.ip_lib` (links, addresses, netns, pids).

Agents talk to the services over HTTP only, with the documents in
:mod:`stratus.contracts`; they never import a service.
"""
