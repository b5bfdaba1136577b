"""Per-host generations against real processes: a change wakes only the long-polls of the
hosts it touches, across API replicas.

One stratus-identity and TWO stratus-network processes on one database (SQLite, and
PostgreSQL: the replicas of docs/api-replicas.md). Two agents' long-polls (the agents'
own request, ``GET /v2.0/stratus-agent/hosts/{host}?since=&wait=``) wait at once, host A's
on replica 2 and host B's on replica 1; a port bound to host A is created through
replica 1. Functional, no timing assertion: A's poll answers a newer generation (and a
document with the port), B's answers on its timeout with the generation it held.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import IdentityServer, Postgres
from network_api import NetworkServer

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("zsc-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path,
             identity: IdentityServer) -> Iterator[tuple[NetworkServer, NetworkServer]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/network.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"zsc_gen_{os.getpid()}_{secrets.token_hex(3)}")
    first = NetworkServer(tmp_path / "replica1", url, identity)
    first.prepare()  # migrates the database, catalog entry
    second = NetworkServer(tmp_path / "replica2", url, identity)
    second.root.mkdir(parents=True)
    (second.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
    started: list[NetworkServer] = []
    try:
        for srv in (first, second):
            srv.start()
            started.append(srv)
        yield first, second
    finally:
        for srv in started:
            srv.stop()
    for srv in started:
        assert "Traceback" not in srv.log(), srv.log()[-3000:]


def test_a_port_on_host_a_wakes_a_and_not_b_across_replicas(
        replicas: tuple[NetworkServer, NetworkServer]) -> None:
    first, second = replicas
    headers = {"X-Auth-Token": first.identity.token()}
    one = httpx.Client(base_url=first.url, headers=headers, timeout=60)
    two = httpx.Client(base_url=second.url, headers=headers, timeout=60)
    host_a, host_b = f"zsc-a-{secrets.token_hex(3)}", f"zsc-b-{secrets.token_hex(3)}"
    for i, host in enumerate((host_a, host_b)):
        one.put(f"/v2.0/stratus-agent/hosts/{host}", json={
            "host": {"underlay_ip": f"192.0.2.{21 + i}", "network_node": False}}
        ).raise_for_status()
    net = one.post("/v2.0/networks", json={"network": {"name": "zsc"}}).json()["network"]
    one.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}).raise_for_status()
    held = {h: one.get(f"/v2.0/stratus-agent/hosts/{h}").json()["generation"]
            for h in (host_a, host_b)}
    answers: dict[str, dict[str, Any]] = {}
    waiting = threading.Barrier(3)
    created = threading.Event()

    def poll(client: httpx.Client, host: str, wait: str) -> None:
        waiting.wait()
        answers[host] = client.get(f"/v2.0/stratus-agent/hosts/{host}", params={
            "since": str(held[host]), "wait": wait}).json()
        answers[host]["zsc_change_made_before"] = created.is_set()

    # Both wait while the change is made (checked below: an order, not a time): had the
    # change woken B, B would answer a new generation. A waits at most 30 s.
    polls = [threading.Thread(target=poll, args=(two, host_a, "30")),
             threading.Thread(target=poll, args=(one, host_b, "8"))]
    for t in polls:
        t.start()
    waiting.wait()
    port = one.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "binding:host_id": host_a,
        "device_owner": "compute:nova"}}).json()["port"]
    created.set()
    for t in polls:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in polls)
    a, b = answers[host_a], answers[host_b]
    assert a["generation"] > held[host_a]
    assert [p["id"] for p in a["ports"]] == [port["id"]]
    assert b["zsc_change_made_before"], "B's poll ended before the change: no verdict"
    assert b["generation"] == held[host_b] and b["ports"] == []
    # B's next look (no wait) still holds the same generation: nothing of B's changed.
    assert one.get(f"/v2.0/stratus-agent/hosts/{host_b}").json()["generation"] == held[host_b]
