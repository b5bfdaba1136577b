"""The network agent (``stratus-network-agent``): its reconcile loop, the network API
client side, its drivers and the metadata proxy it runs in each namespace."""
