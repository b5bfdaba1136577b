"""tests/helpers.py SystemLibvirt (issue 16): stop() stops only a daemon the object
started itself, still the same process, and never a libvirtd that holds someone's
domains. Stand-in children (``sleep``) play the daemons: the real libvirtd on this
machine may be the user's or another test's, which is exactly what must not be touched
(the libvirt integration and e2e modules use the class against the real one)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from helpers import SystemLibvirt, _start_time

pytestmark = [pytest.mark.unit]


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for child in made:  # stopped by pid: only what this test started
        if child.poll() is None:
            child.kill()
        child.wait()


def _child(made: list[subprocess.Popen[bytes]], name: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(["sleep", "300"])
    child.args = [name]  # what ensure() would have started
    made.append(child)
    return child


def test_stop_stops_the_daemons_it_started(children: list[subprocess.Popen[bytes]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SystemLibvirt, "domains", staticmethod(lambda: []))
    lib = SystemLibvirt()
    logd, libvirtd = _child(children, "virtlogd"), _child(children, "libvirtd")
    lib.started = [(logd, _start_time(logd.pid)), (libvirtd, _start_time(libvirtd.pid))]
    lib.stop()
    assert logd.poll() is not None and libvirtd.poll() is not None
    assert lib.started == []


def test_a_libvirtd_holding_domains_is_left_running_with_its_virtlogd(
        children: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SystemLibvirt, "domains", staticmethod(lambda: ["st-instance-0001"]))
    lib = SystemLibvirt()
    logd, libvirtd = _child(children, "virtlogd"), _child(children, "libvirtd")
    lib.started = [(logd, _start_time(logd.pid)), (libvirtd, _start_time(libvirtd.pid))]
    lib.stop()
    assert logd.poll() is None and libvirtd.poll() is None
    assert lib.left_running == [libvirtd.pid]


def test_a_process_that_is_not_the_one_started_is_never_signalled(
        children: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SystemLibvirt, "domains", staticmethod(lambda: []))
    lib = SystemLibvirt()
    other = _child(children, "libvirtd")
    lib.started = [(other, "1")]  # another start time: the pid was reused
    lib.stop()
    assert other.poll() is None


def test_nothing_is_started_or_stopped_when_a_libvirtd_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SystemLibvirt, "answers", staticmethod(lambda: True))
    lib = SystemLibvirt()
    lib.ensure()
    assert lib.started == []
    lib.stop()  # nothing to stop: someone else's daemon stays
