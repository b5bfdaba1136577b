"""An idle agent's log at INFO: the HTTP traffic (long-polls, heartbeats) is at DEBUG.

A real HTTP server (the standard library's, on 127.0.0.1) stands in for the compute API,
so httpx really logs each request; the agent is the compute agent with the fake driver."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.compute.apis import HttpComputeApi
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.fake import FakeDriver
from stratus.common.logs import TrafficToDebug, quiet_http_traffic

pytestmark = pytest.mark.unit


class _ComputeApi(BaseHTTPRequestHandler):
    """The agent endpoints of an idle host: no servers, heartbeats accepted."""

    requests = 0

    def _answer(self, body: dict[str, Any]) -> None:
        type(self).requests += 1
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer({"generation": 1, "servers": []})

    def do_PUT(self) -> None:
        self._answer({})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ComputeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v2.1"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger's output at INFO, as an agent writes it."""
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


def _idle_passes(api: str, tmp_path: Path, passes: int = 3) -> ComputeAgent:
    agent = ComputeAgent(AgentSettings(host="zho1", instances_path=str(tmp_path / "i")),
                         FakeDriver(), HttpComputeApi(api, "zho1", None), images=_NoImages())
    for _ in range(passes):
        assert agent.reconcile_once().ok
        assert agent.heartbeat()
    agent.pool.shutdown(wait=True)
    return agent


class _NoImages:
    def fetch(self, image_id: str) -> Iterator[bytes]:
        raise AssertionError("an idle agent fetches no image")

    def upload(self, image_id: str, path: str) -> None:
        raise AssertionError("an idle agent uploads nothing")


def _lines(stream: io.StringIO, level: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.startswith(level + " ")]


def test_an_idle_agent_logs_nothing_at_info(api: str, tmp_path: Path,
                                            captured: io.StringIO) -> None:
    quiet_http_traffic()
    before = _ComputeApi.requests
    _idle_passes(api, tmp_path)
    assert _ComputeApi.requests - before >= 6  # real requests were made (3 polls, 3 beats)
    assert _lines(captured, "INFO") == []


def test_without_the_filter_httpx_writes_a_line_per_request(
        api: str, tmp_path: Path, captured: io.StringIO) -> None:
    for name in ("httpx", "httpcore"):  # the agents before: one INFO line per request
        logging.getLogger(name).filters[:] = [
            f for f in logging.getLogger(name).filters if not isinstance(f, TrafficToDebug)]
    _idle_passes(api, tmp_path)
    assert len([line for line in _lines(captured, "INFO") if "HTTP Request" in line]) >= 6


def test_with_debug_the_traffic_is_there_at_debug(api: str, tmp_path: Path,
                                                  captured: io.StringIO) -> None:
    quiet_http_traffic()
    logging.getLogger().setLevel(logging.DEBUG)
    _idle_passes(api, tmp_path, passes=1)
    assert any("HTTP Request: GET" in line for line in _lines(captured, "DEBUG"))
    assert not any("HTTP Request" in line for line in _lines(captured, "INFO"))
