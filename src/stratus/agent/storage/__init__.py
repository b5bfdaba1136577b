"""The storage agent (``stratus-storage-agent``): one per host of group ``storage``.

* :mod:`.reconcile` - the pass: pool and targets converged to the desired state;
* :mod:`.pool` - the pool directory of volume and snapshot files (qemu-img);
* :mod:`.tgt` - the iSCSI targets, LUNs, CHAP accounts and ACLs (tgtadm);
* :mod:`.agent` - the loop, the HTTP clients and the console script.

It reads :mod:`stratus.contracts.volume` documents; it imports no service.
"""
