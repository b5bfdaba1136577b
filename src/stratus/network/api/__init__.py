"""The network API's HTTP handlers: one module per resource, each with its ``routes`` table."""
