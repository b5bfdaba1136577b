"""libvirt lifecycle events for a domain wait (``virt/domevents.py``), with a stand-in
for ``virsh event --loop`` (a real one needs a running guest: the compute agent's
libvirt integration test stops and reboots one through it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from stratus.agent.compute.virt.domevents import lifecycle_events

pytestmark = pytest.mark.unit


def stand_in(flag: Path) -> list[str]:
    code = ("import os, sys, time\n"
            "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\n"
            "print(\"event 'lifecycle' for domain 'tbp-d': Stopped Shutdown\", flush=True)\n"
            "time.sleep(120)\n")
    return [sys.executable, "-c", code, str(flag)]


def test_an_event_wakes_the_waiter(tmp_path: Path) -> None:
    flag = tmp_path / "stopped"
    with lifecycle_events(stand_in(flag)) as ev:
        assert ev is not None and ev.alive
        assert not ev.wait(0.05)
        flag.touch()
        assert ev.wait(60)  # set by the line, long before the wait could end
        assert ev.alive


def test_a_virsh_that_ends_says_so_and_one_that_cannot_start_is_none(tmp_path: Path
                                                                      ) -> None:
    with lifecycle_events([sys.executable, "-c", "import sys; sys.exit(1)"]) as ev:
        assert ev is not None
        assert ev.wait(60)
        deadline = time.monotonic() + 10
        while ev.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ev.alive
    with lifecycle_events([str(tmp_path / "no-virsh")]) as none:
        assert none is None
