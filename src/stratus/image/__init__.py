"""stratus-image: the image service (a subset of the OpenStack Image API v2, Glance)."""
