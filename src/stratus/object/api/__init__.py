"""The Swift v1 API handlers, one module per resource."""
