"""The compute agent's settings and what it remembers per server across restarts.

:class:`ServerState` is a JSON file per server in ``<instances_path>/_state/``
(:class:`StateStore`): whether its spawn finished, its taps, the last reboot
generation done and the snapshots uploaded. With the domains and instance
files really on the host, it is everything a restarted agent needs to finish
or redo what a crash interrupted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AgentSettings:
    """``[compute_agent]`` as the loop uses it (docs/compute-agent.md)."""

    host: str
    instances_path: str
    # [DEFAULT] deploy_prefix: taps (and domains, secrets) carry it (agent/compute/naming.py)
    deploy_prefix: str = "st"
    resync_interval: float = 10.0
    heartbeat_interval: float = 10.0
    retry_interval: float = 5.0
    vif_plug_wait: bool = True
    vif_plug_timeout: float = 60.0
    shutdown_timeout: float = 60.0
    image_cache_max_age: float = 86400.0
    console_interval: float = 2.0
    workers: int = 4
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    availability_zone: str = "nova"
    host_ip: str = ""
    # start the servers a host boot stopped (agent/compute/bootresume.py)
    resume_guests_state_on_host_boot: bool = True
    boot_id_path: str = "/proc/sys/kernel/random/boot_id"
    init_stat_path: str = "/proc/1/stat"  # PID 1's start: a container's boot (bootresume.py)


@dataclass
class ServerState:
    """What the agent must remember about a server across restarts."""

    spawned: bool = False
    attempt: int = 0
    devices: list[str] = field(default_factory=list)
    reboot_generation: int = 0
    rebuild_generation: int = 0  # the last rebuild done (Assignment.rebuild)
    resize_generation: int = 0  # the last resize or revert done (Assignment.resize)
    snapshots_done: list[str] = field(default_factory=list)


class StateStore:
    def __init__(self, instances_path: str):
        self.dir = Path(instances_path) / "_state"

    def path(self, server_id: str) -> Path:
        return self.dir / f"{server_id}.json"

    def load(self, server_id: str) -> ServerState | None:
        try:
            raw = json.loads(self.path(server_id).read_text())
        except (OSError, ValueError):
            return None
        known = ServerState.__dataclass_fields__
        return ServerState(**{k: v for k, v in raw.items() if k in known})

    def save(self, server_id: str, state: ServerState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(server_id).with_suffix(".part")
        tmp.write_text(json.dumps(state.__dict__))
        tmp.rename(self.path(server_id))

    def remove(self, server_id: str) -> None:
        self.path(server_id).unlink(missing_ok=True)

    def ids(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.stem for p in self.dir.glob("*.json")}


@dataclass
class PassResult:
    """What one reconcile pass failed at: server id (or what) -> message."""

    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors
