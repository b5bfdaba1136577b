"""stratus-network: the networking API (a subset of Neutron v2.0) on port 9696."""
