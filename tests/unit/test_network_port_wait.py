"""The compute agent's long-poll on a port's status (``api/port_wait.py``): answers at
once without ``wait``, wakes a waiter when the network agent reports the port ACTIVE,
404/403/400 as any Stratus extension."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from network_api import ADMIN, ALICE, NetApi, in_process
from stratus.network.portwait import watch_of

pytestmark = pytest.mark.unit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[NetApi]:
    with in_process(tmp_path) as a:
        yield a


def bound_port(api: NetApi) -> str:
    net = api.network()
    api.subnet(net["id"], "10.9.0.0/24")
    return str(api.port(net["id"], **{"binding:host_id": "cmp1", "device_id": "vm1",
                                      "device_owner": "compute:nova"})["id"])


def status(api: NetApi, port_id: str, query: str = "") -> Any:
    return api.ok("GET", f"/v2.0/stratus-agent/ports/{port_id}/status{query}")["port"]


def report_active(api: NetApi, port_id: str) -> None:
    api.ok("PUT", "/v2.0/stratus-agent/hosts/cmp1/ports",
           json={"ports": {"active": [port_id], "down": []}})


def test_without_wait_it_answers_the_status_now(api: NetApi) -> None:
    pid = bound_port(api)
    assert status(api, pid) == {"id": pid, "status": "DOWN"}
    assert status(api, pid, "?wait=0.3")["status"] == "DOWN"  # the wait ran out
    report_active(api, pid)
    assert status(api, pid, "?wait=30")["status"] == "ACTIVE"


def test_a_waiter_wakes_when_the_agent_reports_the_port_active(api: NetApi) -> None:
    pid = bound_port(api)
    assert api.core is not None
    watch = watch_of(api.core).watch
    answers: list[Any] = []
    waiter = threading.Thread(target=lambda: answers.append(status(api, pid, "?wait=30")))
    waiter.start()
    deadline = time.monotonic() + 20
    while watch.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watch.waiting() == 1
    report_active(api, pid)
    waiter.join(25)  # less than the 30 s wait: only a wake-up ends it this early
    assert not waiter.is_alive()
    assert answers == [{"id": pid, "status": "ACTIVE"}]


@pytest.mark.parametrize(("path", "token", "code"), [
    ("/v2.0/stratus-agent/ports/nope/status?wait=1", ADMIN, 404),
    ("/v2.0/stratus-agent/ports/nope/status", ALICE, 403),
    ("/v2.0/stratus-agent/ports/nope/status?wait=soon", ADMIN, 400),
])
def test_errors(api: NetApi, path: str, token: str, code: int) -> None:
    resp = api.call("GET", path, token)
    assert resp.status_code == code, resp.text


def test_the_report_wakes_the_waiter_at_once_not_at_the_end_of_the_interval(
        api: NetApi) -> None:
    """Issue 17: the committed report pokes the watch (longpoll.poke_if_noted), so the
    waiter does not sit out the poller's interval (10 s here) before the read that
    sees ACTIVE."""
    pid = bound_port(api)
    assert api.core is not None
    watch = watch_of(api.core).watch
    watch.interval = 10.0
    answers: list[Any] = []
    waiter = threading.Thread(target=lambda: answers.append(status(api, pid, "?wait=8")))
    waiter.start()
    deadline = time.monotonic() + 20
    while watch.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the waiter's first read is done: the next would be 10 s later
    reported = time.monotonic()
    report_active(api, pid)
    waiter.join(9)
    assert answers == [{"id": pid, "status": "ACTIVE"}]
    assert time.monotonic() - reported < 3.0  # a wake-up, not the 8 s wait running out
