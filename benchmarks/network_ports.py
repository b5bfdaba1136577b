"""Network API benchmark: port-create latency (p50/p99) and rate, sequential and concurrent.

Prints figures; asserts nothing. A real stratus-network process (one uvicorn
worker) validates tokens against a real stratus-identity, both on temporary
SQLite files (or the network on PostgreSQL with --postgres-url). Ports are
created on a /16 so the subnet never fills; every loop is bounded by count
and by time.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/network_ports.py [--seconds 5] [--concurrency 8] \
        [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import IdentityServer
from network_api import NetworkServer

MAX_PORTS = 5000


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(client: httpx.Client, network_id: str, seconds: float, workers: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = [0]
    end = time.perf_counter() + seconds

    def loop(_i: int) -> None:
        while time.perf_counter() < end and len(latencies) < MAX_PORTS:
            t0 = time.perf_counter()
            resp = client.post("/v2.0/ports", json={"port": {"network_id": network_id}})
            if resp.status_code != 201:
                failures[0] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(loop, range(workers)))
    elapsed = time.perf_counter() - t0
    return {
        "ports": len(latencies),
        "failures": failures[0],
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres-url", help="network database (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-net-") as tmp:
        root = Path(tmp)
        identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
        identity.prepare()
        identity.start()
        url = args.postgres_url or f"sqlite:///{root}/network.sqlite"
        network = NetworkServer(root / "network", url, identity)
        try:
            network.prepare()
            network.start()
            token = identity.token()
            limits = httpx.Limits(max_connections=args.concurrency * 2)
            with httpx.Client(base_url=network.url, headers={"X-Auth-Token": token},
                              timeout=60, limits=limits) as client:
                project = identity_project(identity)
                client.put(f"/v2.0/quotas/{project}", json={"quota": {"port": -1}})
                net = client.post("/v2.0/networks", json={"network": {"name": "bench"}})
                net_id = net.json()["network"]["id"]
                client.post("/v2.0/subnets", json={"subnet": {
                    "network_id": net_id, "cidr": "10.100.0.0/16", "ip_version": 4}})
                engine = "postgresql" if args.postgres_url else "sqlite"
                print(f"port create on {engine}, one uvicorn worker, {args.seconds:.0f} s each")
                for workers in (1, args.concurrency):
                    r = run(client, net_id, args.seconds, workers)
                    kind = "sequential" if workers == 1 else f"{workers} concurrent"
                    print(f"  {kind:>14}: {r['rate']:7.1f} ports/s   p50 {r['p50']:6.1f} ms   "
                          f"p99 {r['p99']:6.1f} ms   ({r['ports']:.0f} ports, "
                          f"{r['failures']:.0f} failures)")
        finally:
            network.stop()
            identity.stop()


def identity_project(identity: IdentityServer) -> str:
    resp = httpx.get(f"{identity.url}/v3/auth/tokens", headers={
        "X-Auth-Token": identity.token(), "X-Subject-Token": identity.token()})
    return str(resp.json()["token"]["project"]["id"])


if __name__ == "__main__":
    main()
