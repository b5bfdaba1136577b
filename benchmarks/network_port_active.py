"""How long a bound port takes to go ACTIVE, with and without the agent's long-poll.

A real ``stratus-network`` app (uvicorn in this process, SQLite, the test token
validator) and a network agent (fake drivers: the signalling path only; a real
linuxbridge pass adds about 0.1 s) polling it over HTTP. For each sample: a new port
is bound to the agent's host (``binding:host_id``) and the time until ``GET
/v2.0/ports/{id}`` says ACTIVE is measured, once with the tap already there and once
with the tap appearing ``--tap-delay`` seconds after the bind (what the compute agent
does).
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/network_port_active.py [--samples 4]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from network_api import ADMIN, fake_validate, make_core
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
from stratus.network.app import build_app

HOST = "bench1"


class AdminToken:
    def token(self, renew: bool = False) -> str:
        return ADMIN


def serve(tmp: Path) -> tuple[str, object]:
    import uvicorn

    app = build_app(make_core(f"sqlite:///{tmp}/network.sqlite"), fake_validate)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthcheck")
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return url, server


def measure(url: str, long_poll: float, samples: int, tap_delay: float | None,
            resync: float, retry: float, run: int) -> list[float]:
    api = httpx.Client(base_url=url, headers={"X-Auth-Token": ADMIN}, timeout=10)
    net = api.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()["network"]
    api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                               "cidr": "10.77.0.0/24"}})
    host = FakeHost()
    drivers = NetworkDrivers(FakeL2(host), FakeDhcp(host), FakeRouters(host),
                             FakeFirewall(host), FakeMetadata(host))
    host_name = f"{HOST}-{run}"  # no ports of an earlier run (their taps are gone)
    source = HttpSource(url + "/v2.0/stratus/host-state?host={host}", host_name,
                        AdminToken())  # type: ignore[arg-type]
    agent = NetworkAgent(drivers, source, reporter=source)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(resync, retry, stop),
                              kwargs={"long_poll_wait": long_poll}, daemon=True)
    thread.start()
    times = []
    try:
        time.sleep(1.0)
        for _ in range(samples):
            port = api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).json()[
                "port"]
            tap = "tap" + port["id"][:11]
            if tap_delay is None:
                host.devices.add(tap)
            started = time.monotonic()
            api.put(f"/v2.0/ports/{port['id']}", json={"port": {
                "binding:host_id": host_name, "device_owner": "compute:nova"}})
            if tap_delay is not None:
                time.sleep(tap_delay)
                host.devices.add(tap)
            while api.get(f"/v2.0/ports/{port['id']}").json()["port"]["status"] != "ACTIVE":
                time.sleep(0.02)
            times.append(time.monotonic() - started)
            # the next bind comes at a random point of the agent's cycle
            time.sleep(random.uniform(0, resync if long_poll == 0 else 2.0))
    finally:
        stop.set()
        agent.wake.set()
        thread.join(timeout=40)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--tap-delay", type=float, default=1.0)
    parser.add_argument("--resync", type=float, default=30.0)
    parser.add_argument("--retry", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snet2-bench-") as tmp:
        url, server = serve(Path(tmp))
        print(f"resync_interval {args.resync:g} s, retry_interval {args.retry:g} s, "
              f"{args.samples} samples each")
        run = 0
        for label, wait in (("long-poll", 30.0), ("no long-poll", 0.0)):
            for case, delay in (("tap present", None),
                                (f"tap {args.tap_delay:g} s after bind", args.tap_delay)):
                run += 1
                t = measure(url, wait, args.samples, delay, args.resync, args.retry, run)
                print(f"{label:13} {case:24} bind->ACTIVE median {statistics.median(t):6.2f} s"
                      f"  max {max(t):6.2f} s  ({', '.join(f'{x:.2f}' for x in t)})",
                      flush=True)
        server.should_exit = True  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
