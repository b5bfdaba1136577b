"""Operator and test tools that talk to a deployed cloud over its public APIs only."""
