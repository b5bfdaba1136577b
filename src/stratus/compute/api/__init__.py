"""The compute API (Nova's v2.1): one module per resource, each a ``routes`` table of
top-level handlers ``(req, svc)`` over the service layer (``stratus.compute.core``)."""
