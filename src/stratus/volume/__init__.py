"""stratus-volume: the block-storage API (a Cinder v3 subset)."""
