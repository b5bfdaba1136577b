"""Compute scheduler and server-create figures (prints them; not a pass/fail test).

1. Scheduler decisions per second with 10,000 simulated hosts: the filters and weighers
   over host records read from a real SQLite database, plus the atomic claim (one
   conditional UPDATE) there.
2. Server-create request latency through the whole API (TestClient, fake image and
   network APIs, SQLite): p50/p99 over sequential creates.

Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/compute_scheduler.py [--hosts 10000] [--decisions 50] \
        [--creates 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sqlalchemy.orm import Session

from compute_api import ALICE, in_process, make_core
from stratus.compute import models as m
from stratus.compute import scheduler
from stratus.compute.core import Settings, utcnow


def scheduler_rate(root: Path, hosts: int, decisions: int) -> None:
    core = make_core(f"sqlite:///{root}/sched.sqlite", Settings())
    now = utcnow()
    with core.db.session() as s:
        for i in range(hosts):
            s.add(m.ComputeHost(host=f"h{i:05d}", hypervisor_hostname=f"h{i:05d}",
                                availability_zone="nova" if i % 10 else "az2", vcpus=32,
                                memory_mb=131072, local_gb=2000, heartbeat_at=now,
                                created_at=now, claimed_ram=(i * 37) % 60000))
    q = scheduler.Request(vcpus=2, ram=4096, disk=20, availability_zone="nova")

    def claim(ranked: list[scheduler.HostRecord]) -> str | None:
        def work(s: Session) -> str | None:
            for cand in ranked:
                if core.claim(s, cand.host, q.vcpus, q.ram, q.disk):
                    return cand.host
            return None
        # core.transaction re-reads the claimed host's row into the host cache.
        return core.transaction(work)

    for fresh in (True, False):
        loads = core.host_cache_loads
        started = time.perf_counter()
        read_time = filter_time = claim_time = 0.0
        for _ in range(decisions):
            t0 = time.perf_counter()
            with core.db.session() as s:
                records = core.host_records(s, fresh=fresh)
            t1 = time.perf_counter()
            ranked = scheduler.select_hosts(records, q, core.settings.ratios, "spread",
                                            limit=50)
            t2 = time.perf_counter()
            claim(ranked)
            t3 = time.perf_counter()
            read_time += t1 - t0
            filter_time += t2 - t1
            claim_time += t3 - t2
        total = time.perf_counter() - started
        how = "every host row read each time" if fresh else (
            f"in-process host cache, {core.host_cache_loads - loads} full read(s)")
        print(f"scheduler, {hosts} hosts, {decisions} decisions on SQLite ({how}):")
        print(f"  {decisions / total:.1f} decisions/s end to end "
              f"(read hosts {read_time / decisions * 1000:.1f} ms, filters+weighers "
              f"{filter_time / decisions * 1000:.1f} ms, claim "
              f"{claim_time / decisions * 1000:.2f} ms per decision)")
    pure = time.perf_counter()
    for _ in range(decisions):
        scheduler.select_hosts(records, q, core.settings.ratios, "spread", limit=50)
    print(f"  {decisions / (time.perf_counter() - pure):.1f} decisions/s for filters+weighers "
          "alone")
    core.db.dispose()


def create_latency(root: Path, count: int) -> None:
    with in_process(root) as api:
        api.flavor(id="1")
        api.host("cmp1", vcpus=512, memory_mb=10**7, local_gb=10**6)
        api.ok("PUT", "/v2.1/os-quota-sets/p-alice", json={"quota_set": {
            "instances": -1, "cores": -1, "ram": -1}})
        net = api.fake.network()
        times = []
        for i in range(count):
            t0 = time.perf_counter()
            api.boot(ALICE, name=f"vm{i}", networks=[{"uuid": net["id"]}])
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print(f"server create through the API (fake image/network, SQLite), {count} creates:")
        print(f"  p50 {times[len(times) // 2]:.1f} ms, p99 {times[int(len(times) * 0.99)]:.1f} "
              f"ms, {count / (sum(times) / 1000):.1f} creates/s sequential")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--creates", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scapi-bench-") as tmp:
        scheduler_rate(Path(tmp), args.hosts, args.decisions)
        create_latency(Path(tmp), args.creates)


if __name__ == "__main__":
    main()
