"""The hand-over parent's decisions (stratus.common.handover.Parent) driven with a fake
launcher and clock, and the two pieces a worker uses (its socket, its ready report) with
real sockets."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from stratus.common import handover
from stratus.common.handover import Parent

pytestmark = pytest.mark.unit


class FakeLauncher:
    """Records the workers started and the signals sent; pids count up from 100."""

    def __init__(self) -> None:
        self.started: list[tuple[int, str, bool]] = []
        self.signals: list[tuple[int, int]] = []

    def start(self, token: str, first: bool) -> int:
        pid = 100 + len(self.started)
        self.started.append((pid, token, first))
        return pid

    def signal(self, pid: int, sig: int) -> None:
        self.signals.append((pid, sig))

    def token(self, pid: int) -> str:
        return next(t for p, t, _ in self.started if p == pid)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serving_parent(expected: int = 1) -> tuple[Parent, FakeLauncher, Clock]:
    launcher, clock = FakeLauncher(), Clock()
    parent = Parent(launcher, expected, clock)
    parent.start()
    for n in range(expected):
        parent.ready(launcher.token(100), 500 + n)
    assert parent.serving is not None and parent.serving.pid == 100
    return parent, launcher, clock


def test_the_first_worker_is_forked_and_serves_once_ready() -> None:
    launcher = FakeLauncher()
    parent = Parent(launcher, 1, Clock())
    parent.start()
    assert launcher.started[0][2] is True  # first: forked, not a new command
    assert parent.serving is None and parent.starting is not None
    parent.ready("another-token", 100)  # not its token: ignored
    assert parent.serving is None
    parent.ready(launcher.token(100), 100)
    assert parent.serving is not None and parent.starting is None
    assert launcher.signals == [] and parent.exit_code is None


def test_a_reload_drains_the_old_worker_only_once_the_new_one_is_ready() -> None:
    parent, launcher, _ = serving_parent()
    parent.reload()
    assert [p for p, _, first in launcher.started if not first] == [101]
    assert launcher.signals == []  # the old one serves until the new one is ready
    parent.ready(launcher.token(101), 101)
    assert launcher.signals == [(100, signal.SIGTERM)]
    assert parent.serving is not None and parent.serving.pid == 101
    assert parent.alive == {100, 101}
    parent.exited(100, 0)  # the drained worker's exit starts nothing
    assert parent.alive == {101} and len(launcher.started) == 2
    assert parent.exit_code is None


def test_a_worker_with_several_uvicorn_processes_is_ready_when_all_of_them_are() -> None:
    parent, launcher, _ = serving_parent(expected=2)
    parent.reload()
    parent.ready(launcher.token(101), 700)
    parent.ready(launcher.token(101), 700)  # the same process twice counts once
    assert launcher.signals == []
    parent.ready(launcher.token(101), 701)
    assert launcher.signals == [(100, signal.SIGTERM)]


def test_a_sighup_during_a_start_reloads_once_that_worker_is_ready() -> None:
    parent, launcher, _ = serving_parent()
    parent.reload()
    parent.reload()  # the starting worker may have read the old files: one more after it
    parent.reload()
    assert len(launcher.started) == 2
    parent.ready(launcher.token(101), 101)
    assert [p for p, _, _ in launcher.started] == [100, 101, 102]
    parent.ready(launcher.token(102), 102)
    assert launcher.signals == [(100, signal.SIGTERM), (101, signal.SIGTERM)]
    assert len(launcher.started) == 3


def test_a_sighup_during_the_first_start_reloads_once_it_is_ready() -> None:
    launcher = FakeLauncher()
    parent = Parent(launcher, 1, Clock())
    parent.start()
    parent.reload()
    parent.ready(launcher.token(100), 100)
    assert [p for p, _, first in launcher.started] == [100, 101]
    assert launcher.started[1][2] is False


def test_a_failed_reload_leaves_the_serving_worker_in_place() -> None:
    parent, launcher, _ = serving_parent()
    parent.reload()
    parent.exited(101, 1)  # e.g. a configuration error in the new worker
    assert parent.serving is not None and parent.serving.pid == 100
    assert launcher.signals == [] and parent.exit_code is None
    parent.reload()  # the next reload tries again
    assert launcher.started[-1][0] == 102


def test_the_first_worker_failing_ends_the_parent_with_its_status() -> None:
    launcher = FakeLauncher()
    parent = Parent(launcher, 1, Clock())
    parent.start()
    parent.exited(100, 3)
    assert parent.exit_code == 3 and len(launcher.started) == 1


def test_an_unexpected_death_starts_another_worker_at_once() -> None:
    parent, launcher, _ = serving_parent()
    parent.exited(100, -9)
    assert parent.serving is None and parent.exit_code is None
    parent.tick()
    assert launcher.started[-1][0] == 101 and launcher.started[-1][2] is False
    parent.ready(launcher.token(101), 101)
    assert parent.serving is not None and parent.serving.pid == 101


def test_replacements_that_keep_failing_are_retried_with_delays_then_given_up() -> None:
    parent, launcher, clock = serving_parent()
    parent.exited(100, -9)
    parent.tick()
    for n in range(1, len(handover.RESTART_DELAYS)):
        parent.exited(launcher.started[-1][0], 1)
        assert parent.exit_code is None
        started = len(launcher.started)
        parent.tick()  # not yet: the delay grows
        assert len(launcher.started) == started
        clock.now += handover.RESTART_DELAYS[n]
        parent.tick()
        assert len(launcher.started) == started + 1
    parent.exited(launcher.started[-1][0], 1)
    assert parent.exit_code == 1


def test_a_ready_report_resets_the_failures() -> None:
    parent, launcher, clock = serving_parent()
    parent.exited(100, -9)
    parent.tick()
    parent.exited(101, 1)
    clock.now += 10
    parent.tick()
    parent.ready(launcher.token(102), 102)
    assert parent.failed_starts == 0


def test_sigterm_stops_every_worker_and_exits_once_all_are_gone() -> None:
    parent, launcher, _ = serving_parent()
    parent.reload()  # one serving, one starting
    parent.stop()
    assert sorted(launcher.signals) == [(100, signal.SIGTERM), (101, signal.SIGTERM)]
    parent.ready(launcher.token(101), 101)  # too late: nothing swaps while stopping
    assert parent.serving is not None and parent.serving.pid == 100
    parent.exited(101, 0)
    assert parent.exit_code is None
    parent.exited(100, 0)
    assert parent.exit_code == 0
    parent.reload()
    parent.tick()
    assert len(launcher.started) == 2  # nothing starts once stopping


def test_a_worker_too_slow_to_be_ready_is_killed() -> None:
    parent, launcher, clock = serving_parent()
    parent.reload()
    clock.now += handover.READY_TIMEOUT + 1
    parent.tick()
    assert launcher.signals == [(101, signal.SIGKILL)]
    parent.exited(101, -9)
    assert parent.serving is not None and parent.serving.pid == 100


def test_the_ready_report_reaches_the_parent_s_notify_socket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"trs-unit-handover-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind("\0" + address)
        monkeypatch.setenv(handover.ENV_NOTIFY, f"{address} tok123")
        assert handover.notify_ready() is True
        assert notify.recv(256).decode() == f"tok123 {os.getpid()}"
    assert handover.notify_ready() is False  # the parent is gone: nothing raised
    monkeypatch.delenv(handover.ENV_NOTIFY)
    assert handover.notify_ready() is False  # not under a parent


def test_a_worker_takes_the_socket_its_parent_handed_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    listening = socket.create_server(("127.0.0.1", 0))
    fd = os.dup(listening.fileno())
    monkeypatch.setenv(handover.ENV_FD, str(fd))
    sock = handover.worker_socket()
    assert sock is not None
    try:
        assert sock.getsockname() == listening.getsockname()
        assert handover.ENV_FD not in os.environ  # no child takes it as its own
        assert not os.get_inheritable(sock.fileno())
    finally:
        sock.close()
        listening.close()
    assert handover.worker_socket() is None


def test_the_service_manager_is_told_on_its_notify_socket(tmp_path: object) -> None:
    from pathlib import Path

    path = str(Path(str(tmp_path)) / "s9m-notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        env = {"NOTIFY_SOCKET": path}
        assert handover.notify_manager("READY=1", env) is True
        assert manager.recv(64) == b"READY=1"
        assert "NOTIFY_SOCKET" not in env  # no worker takes it as its own
    abstract = f"s9m-unit-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + abstract)  # systemd writes an abstract address with "@"
        assert handover.notify_manager("READY=1", {"NOTIFY_SOCKET": "@" + abstract}) is True
        assert manager.recv(64) == b"READY=1"
    assert handover.notify_manager("READY=1", {}) is False  # supervisord, a shell
    assert handover.notify_manager("READY=1", {"NOTIFY_SOCKET": path}) is False  # gone
