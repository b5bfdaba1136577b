"""Stratus extension: the desired state of one host, for its network agent (admin only)."""

from __future__ import annotations

from stratus.common.app import Router
from stratus.network.core import NetworkCore


def add_routes(router: Router, core: NetworkCore) -> None:
    """Filled in below once the agent's model is wired (see hoststate.py)."""
