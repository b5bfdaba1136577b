"""stratus-object: the Swift v1 API (the proxy), the ring, the storage layer per device,
the replicator, the auditor and the expirer."""
