"""The network agent's device watch: ``ip monitor link`` lines, and the loop woken the
moment an awaited tap appears (with resync and retry intervals far beyond the test).

The monitor here is a small stand-in process that prints one netlink line when the test
says so (creating a real link needs root: tests/integration/test_boot_path.py runs the
real ``ip monitor link``)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from stratus.agent.network.devwatch import DeviceWatch, link_event
from stratus.agent.network.drivers.fake import (
    FakeDhcp,
    FakeFirewall,
    FakeHost,
    FakeL2,
    FakeMetadata,
    FakeRouters,
)
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import StaticSource
from stratus.contracts.network import HostState, Port, SecurityGroup

pytestmark = pytest.mark.unit

NET = "11111111-aaaa-4aaa-8aaa-000000000001"
PORT = "port-a1-0000"
FOREVER = 300.0  # resync and retry: no periodic pass can run during a test


class CachingL2(FakeL2):
    """Reads the host's links once per pass, as the real drivers do (IpLib's cache)."""

    def __init__(self, host: FakeHost):
        super().__init__(host)
        self._seen: set[str] | None = None

    def begin_pass(self) -> None:
        self._seen = None

    def device_exists(self, device: str) -> bool:
        if self._seen is None:
            self._seen = set(self.host.devices)
        return device in self._seen


class TapAfterFilter(FakeFirewall):
    """The tap appears right after the first pass's last look at the links."""

    def __init__(self, host: FakeHost, tap: str):
        super().__init__(host)
        self.tap = tap

    def apply(self, ports: list[Port], groups: dict[str, SecurityGroup]) -> None:
        super().apply(ports, groups)
        self.host.devices.add(self.tap)


def state() -> HostState:
    return HostState.from_dict({
        "host": "cmp1", "networks": [{"id": NET, "segmentation_type": "vxlan",
                                      "segmentation_id": 10, "mtu": 1450, "subnets": []}],
        "ports": [{"id": PORT, "network_id": NET, "mac_address": "fa:16:3e:00:00:01",
                   "port_security_enabled": False}]})


def agent_on(host: FakeHost) -> NetworkAgent:
    drivers = NetworkDrivers(CachingL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    return NetworkAgent(drivers, StaticSource(state()))


def until(cond: object, limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize(("line", "event"), [
    ("7: sttap1: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN", ("sttap1", False)),
    ("Deleted 7: sttap1: <BROADCAST,MULTICAST> mtu 1500", ("sttap1", True)),
    ("[LINK]12: veth0@if11: <BROADCAST> mtu 1500", ("veth0", False)),
    ("    link/ether fa:16:3e:00:00:01 brd ff:ff:ff:ff:ff:ff", None),
    ("", None),
])
def test_link_event_lines(line: str, event: tuple[str, bool] | None) -> None:
    assert link_event(line) == event


def fake_monitor(flag: Path, name: str) -> list[str]:
    """Prints an unrelated link, then ``name``'s creation once ``flag`` exists."""
    code = ("import os, sys, time\n"
            "print('3: other0: <BROADCAST> mtu 1500', flush=True)\n"
            "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\n"
            "print('Deleted 9: ' + sys.argv[2] + ': <BROADCAST> mtu 1500', flush=True)\n"
            "print('9: ' + sys.argv[2] + ': <BROADCAST> mtu 1500', flush=True)\n"
            "time.sleep(120)\n")
    return [sys.executable, "-c", code, str(flag), name]


def test_an_awaited_tap_wakes_the_loop_at_once(tmp_path: Path) -> None:
    host = FakeHost()
    agent = agent_on(host)
    tap = agent.naming.tap(PORT)
    flag = tmp_path / "created"
    agent.devwatch = DeviceWatch(agent.wake, fake_monitor(flag, tap))
    assert agent.devwatch.start()
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(FOREVER, FOREVER, stop),
                            kwargs={"long_poll_wait": 0})
    loop.start()
    try:
        assert until(lambda: agent.passes == 1 and agent.devwatch is not None
                     and agent.devwatch._waiting == {tap})
        assert tap not in host.plugged
        host.devices.add(tap)  # the compute agent made the tap
        flag.touch()  # ... and the kernel said so
        assert until(lambda: tap in host.plugged), "the tap was not plugged before the " \
                                                   "periodic pass"
        assert agent.passes == 2 and agent.devwatch.events == 1
    finally:
        stop.set()
        agent.wake.set()
        loop.join(10)
        agent.devwatch.stop()
    assert not loop.is_alive() and not agent.devwatch.alive


def test_a_tap_made_before_the_watch_knew_is_found_by_a_fresh_look(tmp_path: Path) -> None:
    """The tap appears during the pass, after the pass's (cached) look: the loop looks at
    the host again once it has told the watch, so no event is needed."""
    host = FakeHost()
    agent = agent_on(host)
    tap = agent.naming.tap(PORT)
    agent.devwatch = DeviceWatch(agent.wake, fake_monitor(tmp_path / "never", tap))
    assert agent.devwatch.start()
    agent.d.firewall = TapAfterFilter(host, tap)
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(FOREVER, FOREVER, stop),
                            kwargs={"long_poll_wait": 0})
    loop.start()
    try:
        assert until(lambda: tap in host.plugged)
        assert agent.devwatch.events == 0
    finally:
        stop.set()
        agent.wake.set()
        loop.join(10)
        agent.devwatch.stop()


def test_without_a_watch_the_loop_looks_afresh(tmp_path: Path) -> None:
    """No monitor (no ip(8), or it died): the loop's looks re-read the host's links."""
    host = FakeHost()
    agent = agent_on(host)
    tap = agent.naming.tap(PORT)
    agent.devwatch = DeviceWatch(agent.wake, [str(tmp_path / "no-such-ip")])
    assert not agent.devwatch.start() and not agent.devwatch.alive
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(FOREVER, FOREVER, stop),
                            kwargs={"long_poll_wait": 0})
    loop.start()
    try:
        assert until(lambda: agent.passes == 1)
        host.devices.add(tap)
        assert until(lambda: tap in host.plugged)
    finally:
        stop.set()
        agent.wake.set()
        loop.join(10)
