"""Network drivers of the agent: small interfaces (base), fakes, and the real ones."""
