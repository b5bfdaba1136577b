"""The compute agent (``stratus-compute-agent``): one per compute host.

* :mod:`.reconcile` - the loop over the host's assignments, heartbeat, consoles;
* :mod:`.converge` - what it does to one server (where a spawn is decided);
* :mod:`.apis` - its side of the compute, image and network APIs;
* :mod:`.state` - its settings and what it remembers per server;
* :mod:`.agent` - the console script and the wiring from ``[compute_agent]``;
* :mod:`.virt` - the hypervisor behind a small driver interface (libvirt, fake).

It reads :mod:`stratus.contracts.compute` documents and renders config drives
with :mod:`stratus.contracts.metadata_tree`; it imports no service.
"""
