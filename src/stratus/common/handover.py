"""Reloads without downtime: a parent process that owns an API service's listening
socket and swaps the worker processes serving it beneath it (docs/operations.md,
"Reloads").

The process a process manager starts (and tracks: supervisord's and systemd's main
pid) is the *parent*. It binds the service's port once (or takes the socket systemd
hands over), then starts a *worker*: a copy of the service that serves the socket it
inherits (fd in :data:`ENV_FD`) and reports itself ready once its app has started
(:func:`notify_ready`, a datagram on the parent's notify socket, one per uvicorn
process). Started by systemd as a ``Type=notify`` unit, the parent tells it
``READY=1`` once its first worker serves (:func:`notify_manager`), so a unit ordered
after this one starts when the service answers. The parent then:

* on SIGHUP (the reload: ``supervisorctl signal HUP``, ``systemctl reload``) starts a
  new worker -- a new Python process running the same command line, so it reads the
  configuration and the code as they are now -- waits until it is ready, and only then
  sends SIGTERM to the old one, which drains (:mod:`stratus.common.app`). The socket
  never closes: connections made meanwhile wait in its backlog, none is refused. A new
  worker that exits before it is ready leaves the old one serving (the reload failed,
  said in the log);
* on SIGTERM or SIGINT forwards SIGTERM to its workers and exits once they have;
* when the serving worker dies unexpectedly, starts another one at once (its first
  worker failing to start ends the parent with its status, as the service alone did).

:class:`Parent` is the state machine (no system calls: a :class:`Launcher` does
them, so the unit tests drive it with a fake); :func:`run_parent` is its loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

LOG = logging.getLogger("stratus.handover")
ENV_FD = "STRATUS_HANDOVER_FD"  # the listening socket's fd, in a worker
ENV_NOTIFY = "STRATUS_HANDOVER_NOTIFY"  # "<notify address> <worker token>", in a worker
READY_TIMEOUT = 120.0  # seconds a new worker has to report ready before it is stopped
RESTART_DELAYS = (0.0, 0.5, 1.0, 2.0, 5.0)  # after a replacement worker failed to start
_PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    """One worker process: its pid, the token its uvicorn processes report ready
    with, when it started, and which of its processes did."""

    pid: int
    token: str
    started: float
    ready_pids: set[int] = field(default_factory=set)


class Launcher(Protocol):
    """The system calls of the parent (a fake in the unit tests)."""

    def start(self, token: str, first: bool) -> int:
        """Start a worker reporting ready with ``token``; its pid."""

    def signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the worker ``pid`` (nothing if it is gone)."""


class Parent:
    """The parent's decisions, fed with events: :meth:`start`, :meth:`ready`,
    :meth:`reload`, :meth:`stop`, :meth:`exited`, :meth:`tick`. ``expected`` is the
    number of ready reports that make a worker ready (its uvicorn ``workers``)."""

    def __init__(self, launcher: Launcher, expected: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.launcher, self.expected, self.clock = launcher, max(1, expected), clock
        self.serving: Worker | None = None
        self.starting: Worker | None = None
        self.retiring: set[int] = set()
        self.stopping = False
        self.exit_code: int | None = None  # set: the parent exits with it
        self.failed_starts = 0
        self.restart_at: float | None = None
        self.reloads = 0
        self.ever_served = False
        self.reload_pending = False  # a SIGHUP came while a worker was starting

    @property
    def alive(self) -> set[int]:
        """The pids of every worker not yet reaped."""
        pids = set(self.retiring)
        pids.update(w.pid for w in (self.serving, self.starting) if w is not None)
        return pids

    def _launch(self, first: bool) -> None:
        token = secrets.token_hex(8)
        pid = self.launcher.start(token, first)
        self.starting = Worker(pid, token, self.clock())
        LOG.info("worker %d starting%s", pid, "" if first else " (replaces the one serving)"
                 if self.serving else "")

    def start(self) -> None:
        """Start the first worker."""
        self._launch(first=True)

    def ready(self, token: str, pid: int) -> None:
        """A uvicorn process of the worker that has ``token`` started its app; once
        all of them did, the worker serves and the previous one drains."""
        new = self.starting
        if new is None or token != new.token or self.stopping:
            return
        new.ready_pids.add(pid)
        if len(new.ready_pids) < self.expected:
            return
        old, self.serving, self.starting = self.serving, new, None
        self.failed_starts = 0
        self.ever_served = True
        if old is None:
            LOG.info("worker %d serves (ready %.2f s after its start)", new.pid,
                     self.clock() - new.started)
            self._pending()
            return
        LOG.info("worker %d serves (ready %.2f s after its start); worker %d drains",
                 new.pid, self.clock() - new.started, old.pid)
        self.retiring.add(old.pid)
        self.launcher.signal(old.pid, signal.SIGTERM)
        self._pending()

    def _pending(self) -> None:
        if self.reload_pending and self.serving is not None and self.starting is None:
            self.reload_pending = False
            LOG.info("the reload asked for during the start")
            self.reload()

    def reload(self) -> None:
        """SIGHUP: start a new worker; the serving one drains once it is ready."""
        if self.stopping:
            return
        if self.starting is not None:  # it may have read what changed since: one more
            LOG.info("reload: once worker %d, starting now, is ready", self.starting.pid)
            self.reload_pending = True
            return
        self.reloads += 1
        self.restart_at = None
        self._launch(first=False)

    def stop(self) -> None:
        """SIGTERM or SIGINT: every worker drains; the parent exits when all are gone."""
        self.stopping = True
        self.restart_at = None
        self.reload_pending = False
        for pid in sorted(self.alive):
            self.launcher.signal(pid, signal.SIGTERM)
        if not self.alive and self.exit_code is None:
            self.exit_code = 0

    def exited(self, pid: int, code: int) -> None:
        """The worker ``pid`` ended with status ``code``."""
        self.retiring.discard(pid)
        if self.serving is not None and self.serving.pid == pid:
            self.serving = None
            if not self.stopping:
                LOG.error("worker %d ended unexpectedly (status %d); starting another",
                          pid, code)
                if self.starting is None:
                    self.restart_at = self.clock()
        elif self.starting is not None and self.starting.pid == pid:
            self.starting = None
            if self.stopping:
                pass
            elif self.serving is not None:
                LOG.error("reload failed: the new worker %d ended before it was ready "
                          "(status %d); worker %d goes on serving", pid, code,
                          self.serving.pid)
                self._pending()
            elif not self.ever_served:
                LOG.error("the first worker %d ended before it was ready (status %d)",
                          pid, code)
                self.exit_code = code or 1
            else:
                self.failed_starts += 1
                if self.failed_starts >= len(RESTART_DELAYS):
                    LOG.error("%d workers in a row ended before they were ready; giving up",
                              self.failed_starts)
                    self.exit_code = code or 1
                else:
                    self.restart_at = self.clock() + RESTART_DELAYS[self.failed_starts]
        if self.stopping and not self.alive and self.exit_code is None:
            self.exit_code = 0

    def tick(self) -> None:
        """Time passed: start a due replacement; stop a worker too slow to be ready."""
        now = self.clock()
        if self.restart_at is not None and now >= self.restart_at and self.starting is None \
                and not self.stopping:
            self.restart_at = None
            self._launch(first=False)
        new = self.starting
        if new is not None and now - new.started > READY_TIMEOUT and not self.stopping:
            LOG.error("worker %d not ready after %.0f s; stopping it", new.pid, READY_TIMEOUT)
            self.launcher.signal(new.pid, signal.SIGKILL)


# ---- the real processes -------------------------------------------------------------


def under_parent() -> bool:
    """Whether this process is (or belongs to) a worker of a hand-over parent."""
    return bool(os.environ.get(ENV_NOTIFY))


def notify_ready() -> bool:
    """In a worker's uvicorn process once its app started: tell the parent (nothing
    outside a hand-over). True when told."""
    value = os.environ.get(ENV_NOTIFY, "")
    address, _, token = value.partition(" ")
    if not address or not token:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(f"{token} {os.getpid()}".encode(), "\0" + address)
    except OSError as exc:  # the parent is gone: nothing to tell
        LOG.warning("could not report ready to the hand-over parent: %s", exc)
        return False
    return True


def notify_manager(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` (``READY=1``) to the service manager that started this process
    with ``Type=notify`` (systemd's ``$NOTIFY_SOCKET``: a path, or an abstract address
    written with a leading ``@``); nothing when there is none (supervisord, a shell).
    The variable is removed, so that no worker takes it as its own. True when sent."""
    env = os.environ if environ is None else environ
    address = env.pop("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        LOG.warning("could not tell the service manager %s: %s", message, exc)
        return False
    return True


def bind_socket(host: str, port: int) -> socket.socket:
    """The parent's listening socket on ``host:port``, bound as uvicorn binds it
    (``SO_REUSEADDR``, its backlog); exits with a one-line message when the port is taken."""
    import uvicorn

    return uvicorn.Config("unused:app", host=host, port=port).bind_socket()


def worker_socket() -> socket.socket | None:
    """In a worker: the listening socket its parent handed over, or None. The variable
    is removed so that no later child takes the fd as its own."""
    fd = os.environ.pop(ENV_FD, "")
    if not fd.isdigit():
        return None
    sock = socket.socket(fileno=int(fd))
    os.set_inheritable(sock.fileno(), False)
    return sock


def _die_with_parent(parent: int) -> None:
    """In a new worker: be killed when the parent dies (a kill -9 of the service must
    not leave a worker holding its port), and end at once if it already has."""
    # Not on Linux: the parent's death is not followed.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class ProcessLauncher:
    """Starts workers: the first one forked from the parent (it has imported what the
    service needs; ``serve_here`` serves the socket), the next ones as new processes
    running the parent's own command line (the code and configuration as they are now)."""

    def __init__(self, sock: socket.socket, notify_address: str,
                 serve_here: Callable[[socket.socket], int],
                 argv: list[str] | None = None) -> None:
        self.sock, self.notify_address, self.serve_here = sock, notify_address, serve_here
        self.argv = argv or [sys.executable, *sys.orig_argv[1:]]
        self.close_in_child: list[int] = []

    def start(self, token: str, first: bool) -> int:
        parent = os.getpid()
        env = {ENV_FD: str(self.sock.fileno()), ENV_NOTIFY: f"{self.notify_address} {token}"}
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: never returns into the parent's loop
            _die_with_parent(parent)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            # A reload is the parent's: a SIGHUP sent to the whole group does not end the
            # worker (ignored across the exec; uvicorn's multi-process supervisor installs
            # its own: it restarts its processes).
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.set_wakeup_fd(-1)
            for fd in self.close_in_child:
                os.close(fd)
            os.environ.update(env)
            if first:
                os.environ.pop(ENV_FD)
                code = self.serve_here(self.sock)
            else:
                os.set_inheritable(self.sock.fileno(), True)
                os.execve(self.argv[0], self.argv, os.environ)
        except BaseException:  # reported, then the child ends
            LOG.exception("worker failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def run_parent(sock: socket.socket, serve_here: Callable[[socket.socket], int],
               expected: int = 1, argv: list[str] | None = None) -> int:
    """Be the parent of the workers serving ``sock`` until SIGTERM or SIGINT (or the
    first worker failing); the exit status."""
    address = f"stratus-handover-{os.getpid()}-{secrets.token_hex(4)}"
    # systemd's notify socket (a Type=notify unit): told READY=1 once the first worker
    # serves, so units ordered After= this one start when it answers, not when it forks
    manager = os.environ.pop("NOTIFY_SOCKET", "")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("\0" + address)
    notify.setblocking(False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    launcher = ProcessLauncher(sock, address, serve_here, argv)
    launcher.close_in_child = [notify.fileno(), wake_r, wake_w]
    parent = Parent(launcher, expected)
    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, on_signal)
    signal.set_wakeup_fd(wake_w)
    LOG.info("hand-over parent %d: serving %s through workers (SIGHUP reloads)",
             os.getpid(), sock.getsockname())
    parent.start()
    try:
        while parent.exit_code is None:
            select.select([notify.fileno(), wake_r], [], [], 0.5)
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
            while signals:
                got = signals.pop(0)
                if got == signal.SIGHUP:
                    LOG.info("SIGHUP: reloading")
                    parent.reload()
                elif got in (signal.SIGTERM, signal.SIGINT):
                    LOG.info("%s: stopping the workers", signal.Signals(got).name)
                    parent.stop()
                    sock.close()  # as the service alone did: no new connection waits
            with contextlib.suppress(BlockingIOError):
                while True:
                    token, _, sender = notify.recv(256).decode(errors="replace").partition(" ")
                    if sender.isdigit():
                        parent.ready(token, int(sender))
            if manager and parent.ever_served:
                notify_manager("READY=1", {"NOTIFY_SOCKET": manager})
                manager = ""
            for pid, code in _reap():
                parent.exited(pid, code)
            parent.tick()
    finally:
        signal.set_wakeup_fd(-1)
        notify.close()
        os.close(wake_r)
        os.close(wake_w)
    return parent.exit_code


def _reap() -> list[tuple[int, int]]:
    ended: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


__all__ = [
    "ENV_FD",
    "ENV_NOTIFY",
    "Launcher",
    "Parent",
    "ProcessLauncher",
    "Worker",
    "bind_socket",
    "notify_manager",
    "notify_ready",
    "run_parent",
    "under_parent",
    "worker_socket",
]
