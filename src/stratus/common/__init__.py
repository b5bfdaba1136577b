"""Pieces every Stratus service shares: configuration, database, HTTP app, auth, policy."""
