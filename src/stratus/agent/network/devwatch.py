"""Wake the network agent the moment a device it waits for appears (netlink, no polling).

An instance port's tap is made by the compute agent (or libvirt) while the network
agent already knows the port: its pass finds no device, plugs nothing and lists the
device in ``waiting_devices``. :class:`DeviceWatch` runs ``ip -o monitor link`` (the
kernel's netlink link events, in the agent's host namespace) as one long-lived child
process; a reader thread sets the agent's ``wake`` event as soon as a link whose name
is awaited appears, so the tap is plugged, filtered and its port reported ACTIVE in
the pass that starts right then, not on the next periodic or retry pass.

The race between a pass looking for a device and the watch learning that it waits for
it is closed by the loop (:meth:`stratus.agent.network.reconcile.NetworkAgent.run`):
it calls :meth:`DeviceWatch.expect` first and then looks at the host once more.
Without ``ip`` or when the monitor dies, :attr:`DeviceWatch.alive` is False and the
loop falls back to looking for the devices every ``DEVICE_POLL`` seconds.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterable, Sequence

LOG = logging.getLogger(__name__)

# "3: tap1234: <BROADCAST,...> mtu 1500 ..." (new or changed); "Deleted 3: tap1234: ...";
# some ip(8) versions prefix "[LINK]"; a veth/vlan name carries "@peer".
_LINE = re.compile(r"^(?:\[[A-Z]+\]\s*)?(Deleted\s+)?\d+:\s+([^:@\s]+)(?:@[^:\s]*)?:")


def link_event(line: str) -> tuple[str, bool] | None:
    """``(name, deleted)`` of one ``ip -o monitor link`` line, None for any other line."""
    m = _LINE.match(line.strip())
    if m is None:
        return None
    return m.group(2), bool(m.group(1))


class DeviceWatch:
    """Sets ``wake`` when a link named in the awaited set appears (see the module doc)."""

    def __init__(self, wake: threading.Event, argv: Sequence[str] = ("ip", "-o", "monitor",
                                                                      "link")):
        self.wake = wake
        self.argv = list(argv)
        self._waiting: frozenset[str] = frozenset()
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self.events = 0  # awaited devices seen (tests, logs)

    @property
    def alive(self) -> bool:
        """Whether the monitor runs (else the loop must look for devices itself)."""
        return self._proc is not None and self._proc.poll() is None and (
            self._thread is not None and self._thread.is_alive())

    def start(self) -> bool:
        """Start the monitor; False (and a warning) when it cannot run here."""
        try:
            self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                          text=True, bufsize=1)
        except OSError as exc:
            LOG.warning("cannot watch links (%s): looking for missing devices every pass "
                        "instead", exc)
            self._proc = None
            return False
        self._thread = threading.Thread(target=self._read, name="device-watch", daemon=True)
        self._thread.start()
        return True

    def expect(self, devices: Iterable[str]) -> None:
        """The devices the agent now waits for (replaces the previous set)."""
        self._waiting = frozenset(devices)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _read(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            event = link_event(line)
            if event is None or event[1] or event[0] not in self._waiting:
                continue
            self._waiting -= {event[0]}  # one wake-up per appearance, not per change
            self.events += 1
            LOG.debug("device %s appeared: waking the loop", event[0])
            self.wake.set()
        if self._proc is proc:
            LOG.warning("the link monitor (%s) ended: looking for missing devices every "
                        "%s instead", " ".join(self.argv), "pass")
