"""The four API services as real processes for integration tests: identity, image,
network and compute, each with its own SQLite database under one directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import ComputeServer, IdentityServer, ImageServer
from network_api import NetworkServer


@dataclass
class ComputeStack:
    root: Path
    identity: IdentityServer
    image: ImageServer
    network: NetworkServer
    compute: ComputeServer


@contextmanager
def compute_stack(root: Path) -> Iterator[ComputeStack]:
    """Starts the services in dependency order and stops them (by pid) in reverse; on a
    clean exit, a traceback in stratus-compute's log fails the caller."""
    started: list[Any] = []

    def up(server: Any) -> Any:
        server.prepare()
        server.start()
        started.append(server)
        return server

    try:
        identity = up(IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite"))
        image = up(ImageServer(root / "image", identity))
        network = up(NetworkServer(root / "network", f"sqlite:///{root}/network.sqlite",
                                   identity))
        compute = up(ComputeServer(root / "compute", identity, image.url, network.url))
        yield ComputeStack(root, identity, image, network, compute)
        assert "Traceback" not in compute.log(), compute.log()[-3000:]
    finally:
        for server in reversed(started):
            server.stop()
