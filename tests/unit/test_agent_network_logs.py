"""An idle network agent's log at INFO: nothing (the traffic is at DEBUG).

A real HTTP server (the standard library's, on 127.0.0.1) stands in for the network API
(an empty host state with its generation; registrations and port reports accepted), so
httpx really logs each request; the agent is the real ``NetworkAgent`` over ``HttpSource``
with the fake drivers (no host objects)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stratus.agent.network.drivers.fake import (
    FakeDhcp,
    FakeFirewall,
    FakeHost,
    FakeL2,
    FakeMetadata,
    FakeRouters,
)
from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
from stratus.agent.network.sources import HttpSource
from stratus.common.logs import quiet_http_traffic

pytestmark = pytest.mark.unit

HOST = "zsc-cmp1"


class _NetworkApi(BaseHTTPRequestHandler):
    requests = 0

    def _answer(self, body: dict[str, Any]) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("content-length") or 0))
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer({"host": HOST, "tunnel_peers": [], "networks": [], "ports": [],
                      "dhcp_servers": [], "routers": [], "security_groups": [],
                      "generation": 7})

    def do_PUT(self) -> None:
        self._answer({"ports": {"active": [], "down": []}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NetworkApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    saved = {n: list(logging.getLogger(n).filters) for n in ("httpx", "httpcore")}
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    for name, filters in saved.items():
        logging.getLogger(name).filters[:] = filters


def _passes(api: str, passes: int = 3) -> NetworkAgent:
    fake = FakeHost()
    source = HttpSource(f"{api}/v2.0/stratus-agent/hosts/{{host}}", HOST,
                        underlay_ip="192.0.2.31")
    agent = NetworkAgent(NetworkDrivers(FakeL2(fake), FakeDhcp(fake), FakeRouters(fake),
                                        FakeFirewall(fake), FakeMetadata(fake)),
                         source, None, source)
    for _ in range(passes):
        assert agent.reconcile_once().ok
        assert source.watch(7, 1) == 7  # the long-poll's request (answered at once here)
    return agent


def test_a_quiet_network_agent_pass_logs_nothing_at_info(
        api: str, captured: io.StringIO) -> None:
    quiet_http_traffic()
    before = _NetworkApi.requests
    _passes(api)
    assert _NetworkApi.requests - before >= 9  # state, registration, report, long-poll...
    lines = [ln for ln in captured.getvalue().splitlines()
             if ln.split(" ", 1)[0] in ("INFO", "WARNING", "ERROR")]
    assert lines == []


def test_without_the_filter_httpx_would_write_a_line_per_request(
        api: str, captured: io.StringIO) -> None:
    # The check above can fail: unfiltered, httpx logs each request at INFO.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).filters.clear()
    _passes(api, passes=1)
    assert any(ln.startswith("INFO httpx") for ln in captured.getvalue().splitlines())
