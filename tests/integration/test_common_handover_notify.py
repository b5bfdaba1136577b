"""A hand-over parent started by systemd as a ``Type=notify`` unit tells it READY=1 only
once its first worker serves (stratus.common.handover.run_parent), and its workers do not
see systemd's notify socket. A real parent process with a worker that reports ready on its
own; systemd's side is a datagram socket of the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PARENT = textwrap.dedent("""
    import os, socket, sys, time
    from stratus.common import handover

    marker = sys.argv[1]

    def serve_here(sock):
        time.sleep(0.5)  # the worker's start: systemd must not hear READY before this
        with open(marker, "w") as fh:
            fh.write(os.environ.get("NOTIFY_SOCKET", "-"))
        handover.notify_ready()
        time.sleep(60)
        return 0

    listening = socket.create_server(("127.0.0.1", 0))
    sys.exit(handover.run_parent(listening, serve_here))
""")


def test_a_type_notify_parent_is_ready_once_its_first_worker_serves(tmp_path: Path) -> None:
    notify_path = str(tmp_path / "s9m-notify")
    marker = tmp_path / "s9m-worker-ready"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(notify_path)
        manager.settimeout(20)
        proc = subprocess.Popen([sys.executable, "-c", PARENT, str(marker)],
                                env={**os.environ, "NOTIFY_SOCKET": notify_path},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            started = time.monotonic()
            message = manager.recv(64)
            took = time.monotonic() - started
            assert message == b"READY=1"
            assert marker.exists(), "READY=1 came before the worker reported ready"
            assert took >= 0.5
            assert marker.read_text() == "-", "the worker saw systemd's notify socket"
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode()[-2000:]
