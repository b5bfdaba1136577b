"""libvirt's lifecycle events for one domain, so a wait for a state change is woken by
libvirt instead of asking ``virsh dominfo`` every half second.

:func:`lifecycle_events` runs ``virsh event --domain <name> --event lifecycle --loop``
as a child process for the length of a wait (a graceful stop, an ACPI reboot); a reader
thread sets a :class:`threading.Event` on every line virsh prints (one per lifecycle
event: "Stopped", "Shutdown", "Started", ...). The caller starts it BEFORE it sends the
shutdown, clears the event before each look at the domain's state and waits on it
between looks (with a slow backstop, in case virsh registered its callback after the
domain already changed). When virsh cannot run, the context yields None and the caller
polls as before.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections.abc import Iterator, Sequence

LOG = logging.getLogger(__name__)


class Events:
    """``changed``: set at every event; ``alive``: virsh still listens."""

    def __init__(self) -> None:
        self.changed = threading.Event()
        self.alive = True

    def wait(self, timeout: float) -> bool:
        return self.changed.wait(timeout)


@contextlib.contextmanager
def lifecycle_events(argv: Sequence[str]) -> Iterator[Events | None]:
    """Run ``argv`` (a ``virsh ... event ... --loop``) while the block runs; ``changed`` is
    set at each line it prints. None when it cannot be started."""
    events = Events()
    changed = events.changed
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, text=True, bufsize=1)
    except OSError as exc:
        LOG.debug("no lifecycle events (%s): polling the domain's state", exc)
        yield None
        return

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                changed.set()
        events.alive = False  # virsh ended (an error): the waiter polls again
        changed.set()

    reader = threading.Thread(target=read, name="domain-events", daemon=True)
    reader.start()
    try:
        yield events
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
