"""Restarting real API processes while clients and agents are busy (issue 19): the
lab that ``tests/integration/test_restart.py`` checks and ``benchmarks/restart_downtime.py``
measures.

* :func:`full_stack` starts identity, image, network, compute and metadata as real
  processes (by pid, each with its own SQLite database under one directory);
* a :class:`Probe` thread sends one request after another to a service, as a client
  with a keep-alive connection would, and records each outcome;
* an :class:`AgentPoller` thread long-polls the network or compute API the way the
  agents do (their own HTTP clients: ``HttpSource.watch``, ``HttpComputeApi.assignments``);
* :func:`restart` is what a process manager does: SIGTERM to the pid, wait for the exit,
  start the same command again (supervisord's ``restart``, systemd's ``restart``);
* :func:`reload` is the reload: SIGHUP to the tracked pid (``supervisorctl signal HUP``,
  ``systemctl reload``); the hand-over parent keeps its pid and its socket and swaps its
  worker (:mod:`stratus.common.handover`).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from helpers import ADMIN_PASSWORD, BIN, IdentityServer, free_port, wait_http
from stack import ComputeStack, compute_stack
from stratus.agent.compute.apis import HttpComputeApi
from stratus.agent.network.sources import HttpSource
from stratus.common.clients import PasswordAuth, ServiceError
from stratus.contracts.compute import HostResources

METADATA_PASSWORD = "trs-metadata-secret"


@dataclass
class MetadataServer:
    """stratus-metadata in its own process, against the stack's compute and identity."""

    root: Path
    identity: IdentityServer
    compute_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_METADATA__BIND_HOST": "127.0.0.1",
            "STRATUS_METADATA__BIND_PORT": str(self.port),
            "STRATUS_METADATA__SHARED_SECRET": "trs-shared-secret",
            "STRATUS_METADATA__COMPUTE_URL": f"{self.compute_url}/v2.1",
            "STRATUS_METADATA__IDENTITY_URL": f"{self.identity.url}/v3",
            "STRATUS_METADATA__USERNAME": "stratus-metadata",
            "STRATUS_METADATA__PASSWORD": METADATA_PASSWORD,
        }

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        subprocess.run([str(BIN / "stratus-manage"), "service-user", "ensure", "--name",
                        "stratus-metadata"],
                       env={**self.identity.env, "STRATUS_SERVICE_PASSWORD": METADATA_PASSWORD},
                       capture_output=True, text=True, check=True)

    def start(self) -> None:
        log = open(self.root / "metadata.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-metadata")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/healthcheck", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.root / "metadata.log").read_text(errors="replace")


@dataclass
class Stack:
    """The five services, by name, with an admin token."""

    base: ComputeStack
    metadata: MetadataServer
    token: str

    def services(self) -> dict[str, Any]:
        b = self.base
        return {"identity": b.identity, "image": b.image, "network": b.network,
                "compute": b.compute, "metadata": self.metadata}

    def admin_auth(self) -> PasswordAuth:
        return PasswordAuth(f"{self.base.identity.url}/v3", "admin", ADMIN_PASSWORD, "admin")


@contextmanager
def full_stack(root: Path) -> Iterator[Stack]:
    """The compute stack of tests/stack.py plus stratus-metadata; all stopped by pid."""
    with compute_stack(root) as base:
        meta = MetadataServer(root / "metadata", base.identity, base.compute.url)
        meta.prepare()
        try:
            meta.start()
            yield Stack(base, meta, base.identity.token())
        finally:
            meta.stop()


# The request each probe repeats: a path that goes through the service's own work
# (token validation against identity, a database read) where the service has one.
PROBES: dict[str, tuple[str, bool]] = {
    "identity": ("/v3/auth/tokens", True),  # validates the token it is given
    "image": ("/v2/images", True),
    "network": ("/v2.0/networks", True),
    "compute": ("/v2.1/flavors", True),
    "metadata": ("/healthcheck", False),
}


@dataclass
class Outcome:
    started: float
    ended: float
    kind: str  # "ok", "connection" (no answer: refused, reset, closed), "http-<status>"
    detail: str = ""


class Probe(threading.Thread):
    """Sends ``GET path`` to ``url`` again and again (``pause`` between two), as one
    client with a keep-alive connection; records every outcome."""

    def __init__(self, url: str, path: str, token: str | None, pause: float = 0.01):
        super().__init__(daemon=True, name=f"probe {url}{path}")
        self.url, self.path, self.pause = url, path, pause
        headers = {"X-Auth-Token": token} if token else {}
        if token and path == "/v3/auth/tokens":
            headers["X-Subject-Token"] = token
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.outcomes: list[Outcome] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                resp = self.http.get(self.path)
                kind = "ok" if resp.is_success else f"http-{resp.status_code}"
                detail = "" if resp.is_success else resp.text[:200]
            except httpx.TransportError as exc:
                kind, detail = "connection", f"{type(exc).__name__}: {exc}"
            self.outcomes.append(Outcome(started, time.monotonic(), kind, detail))
            self.stop_event.wait(self.pause)

    def finish(self) -> list[Outcome]:
        self.stop_event.set()
        self.join(40)
        self.http.close()
        return self.outcomes


class AgentPoller(threading.Thread):
    """Long-polls like an agent: ``poll(since)`` returns the generation seen; every
    outcome is recorded (``ok`` with the generation, or the error's text)."""

    def __init__(self, name: str, first: Callable[[], int], poll: Callable[[int], int]):
        super().__init__(daemon=True, name=f"agent {name}")
        self.first, self.poll = first, poll
        self.outcomes: list[Outcome] = []
        self.stop_event = threading.Event()
        self.first_read = threading.Event()  # set once the first read is done (or failed)

    def run(self) -> None:
        try:
            since = self.first()
        except Exception as exc:  # recorded: the test fails on it
            self.outcomes.append(Outcome(0, 0, "error", f"first read: {exc}"))
            return
        finally:
            self.first_read.set()
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                since = self.poll(since)
                kind, detail = "ok", str(since)
            except Exception as exc:  # recorded: the test says which were allowed
                kind, detail = "error", f"{type(exc).__name__}: {exc}"
                self.stop_event.wait(0.5)
            self.outcomes.append(Outcome(started, time.monotonic(), kind, detail))

    def finish(self) -> list[Outcome]:
        self.stop_event.set()
        self.join(40)
        return self.outcomes


def network_agent(stack: Stack, host: str, wait: float = 30.0) -> AgentPoller:
    """The network agent's long-poll (its HttpSource) on the stack's network API."""
    source = HttpSource(stack.base.network.url + "/v2.0/stratus-agent/hosts/{host}", host,
                        stack.admin_auth())

    def first() -> int:
        return source.get().generation

    def poll(since: int) -> int:
        gen = source.watch(since, wait)
        assert gen is not None
        return gen

    return AgentPoller("network", first, poll)


def compute_agent(stack: Stack, host: str, wait: float = 30.0) -> AgentPoller:
    """The compute agent's long-poll (its HttpComputeApi) on the stack's compute API,
    for a host that sent its heartbeat."""
    api = HttpComputeApi(stack.base.compute.url + "/v2.1", host, stack.admin_auth())
    api.heartbeat(HostResources(vcpus=2, memory_mb=2048, local_gb=20, vcpus_used=0,
                                memory_mb_used=0, local_gb_used=0, running_vms=0,
                                virt_type="qemu", hypervisor_hostname=host,
                                host_ip="127.0.0.1"))

    def first() -> int:
        return api.assignments().generation

    def poll(since: int) -> int:
        return api.assignments(wait=wait, since=since).generation

    return AgentPoller("compute", first, poll)


@dataclass
class Restart:
    """One restart's figures (seconds): SIGTERM to exit, start to first answer."""

    stop: float
    start: float
    started_at: float
    ended_at: float


def restart(server: Any, held: socket.socket | None = None) -> Restart:
    """SIGTERM the running process (by pid), wait for its exit, start it again: as
    itself (it binds its port), or with ``held``, a listening socket on its port that
    outlives the processes, handed over as systemd's socket activation does
    (:func:`start_on_socket`)."""
    proc = server.proc
    assert proc is not None and proc.poll() is None
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    t1 = time.monotonic()
    if held is None:
        server.start()
    else:
        start_on_socket(server, held)
    t2 = time.monotonic()
    return Restart(t1 - t0, t2 - t1, t0, t2)


@dataclass
class Reload:
    """One reload: the worker before and after, the parent's pid (unchanged), and its
    time (SIGHUP to the old worker's exit, seconds)."""

    parent: int
    old_worker: int
    new_worker: int
    took: float
    started_at: float
    ended_at: float


def workers_of(parent: int) -> set[int]:
    """The pids of the processes whose parent is ``parent`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def wait_worker(parent: int, timeout: float = 60.0) -> int:
    """The one worker of the hand-over parent ``parent`` (waits for it to be alone)."""
    deadline = time.monotonic() + timeout
    while True:
        found = workers_of(parent)
        if len(found) == 1:
            return found.pop()
        if time.monotonic() > deadline:
            raise AssertionError(f"parent {parent} has workers {found}, not one")
        time.sleep(0.02)


def reload(server: Any, timeout: float = 60.0) -> Reload:
    """SIGHUP to the service's tracked pid; wait until its old worker has exited and a
    new one is the only one."""
    proc = server.proc
    assert proc is not None and proc.poll() is None
    old = wait_worker(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGHUP)
    deadline = t0 + timeout
    while True:
        found = workers_of(proc.pid)
        if old not in found and len(found) == 1:
            break
        assert proc.poll() is None, f"the parent exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"no new worker after {timeout} s: {found}"
        time.sleep(0.01)
    t1 = time.monotonic()
    return Reload(proc.pid, old, found.pop(), t1 - t0, t0, t1)


def listening_socket(port: int) -> socket.socket:
    """What a systemd .socket unit holds: a listening TCP socket on 127.0.0.1:``port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def start_on_socket(server: Any, held: socket.socket) -> None:
    """Start ``server``'s command with ``held`` as fd 3 and ``LISTEN_FDS=1``,
    ``LISTEN_PID`` its own pid (set by a shell that then execs the service, so the pid
    stays), as systemd does; wait until it answers."""
    name = type(server).__name__.removesuffix("Server").lower()
    log = open(server.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    fd = held.fileno()
    server.proc = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ exec "$0"', str(BIN / f"stratus-{name}")],
        env={**server.env, "LISTEN_FDS": "1"}, stdout=log, stderr=subprocess.STDOUT,
        pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
    wait_http(f"{server.url}/healthcheck", proc=server.proc)


def downtime(outcomes: list[Outcome], window: Restart | Reload, slack: float = 2.0) -> float:
    """The longest time without a successful answer around the restart (or reload):
    between two successive successful answers (ends), from the last one before the
    signal to the first after the new process answered. A request that failed does not
    end a gap."""
    ok = [o.ended for o in outcomes if o.kind == "ok"]
    before = [t for t in ok if t <= window.started_at]
    after = [t for t in ok if window.started_at < t <= window.ended_at + slack]
    if not before or not after:
        return float("nan")
    points = [before[-1], *after]
    return max(b - a for a, b in itertools.pairwise(points))


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.kind != "ok"]


def agent_errors_allowed(exc_text: str) -> bool:
    """Whether an agent's failed long-poll was only the hand-over's connection error."""
    return "unreachable" in exc_text


__all__ = ["PROBES", "AgentPoller", "MetadataServer", "Probe", "Reload", "Restart",
           "ServiceError",
           "Stack", "compute_agent", "downtime", "failures", "full_stack", "listening_socket",
           "network_agent", "reload", "restart", "start_on_socket", "wait_worker",
           "workers_of"]
