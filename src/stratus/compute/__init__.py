"""stratus-compute: the compute API (a Nova v2.1 subset) and its scheduler."""
