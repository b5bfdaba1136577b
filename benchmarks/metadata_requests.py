"""Metadata benchmark: requests per second and p50/p99 latency of stratus-metadata.

A real ``stratus-metadata`` process (uvicorn, 127.0.0.1) in front of the fake
compute API of tests/integration/test_metadata_server.py (a threaded
http.server on 127.0.0.1 answering the metadata lookup). 100 concurrent
clients (keep-alive connections of a minimal asyncio HTTP client) send
signed requests, as the proxies would, for a mix
of paths a cloud-init crawl asks for, spread over 200 instances:

* warm: ``cache_ttl`` 300 s, the cache filled before measuring;
* cold: ``cache_ttl`` 0, every request asks the compute API (lookup + render).

Besides requests per second and p50/p99 (and p99.9 and the slowest) it prints the CPU time
the service's processes (the hand-over parent and its workers) used per request during the
run, the CPU time the clients used per request, and the load average: on a shared machine
the wall-clock figures move with everyone else's work, the CPU time per request much less
(issue 17). The clients run in a process of their own (one thread, an event loop), not in
the process that holds the fake compute API's threads, so their CPU time is theirs alone;
on two cores the server and the clients each need one, so a client costing as much CPU
per request as the server halves what the server can show.

Prints figures; asserts nothing. Bounded by time and count.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/metadata_requests.py [--seconds 5] [--clients 100] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_metadata_server import NET, FakeCompute, MetadataProcess, instance_doc, signed

PATHS = ("/openstack/latest/meta_data.json", "/openstack/latest/network_data.json",
         "/openstack/latest/user_data", "/latest/meta-data/", "/latest/meta-data/instance-id",
         "/latest/meta-data/public-keys/0/openssh-key")
INSTANCES = 200
MAX_REQUESTS = 200000


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    todo = [pid]
    while todo:
        cur = todo.pop()
        if cur in stats:
            total += (int(stats[cur][11]) + int(stats[cur][12])) / tick
        todo.extend(children.get(cur, []))
    return total


def ips() -> list[str]:
    return [f"10.50.{i // 250}.{i % 250 + 1}" for i in range(INSTANCES)]


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
               ) -> int:
    """One keep-alive GET on an open connection; the status code."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, seconds: float, clients: int) -> tuple[int, int, list[float], float]:
    """``clients`` concurrent keep-alive connections, each sending one request after the
    other. A minimal asyncio HTTP/1.1 client, so that the client (on the same 2 cores)
    costs far less than the server it measures."""
    host, port = url.split("//")[1].split(":")
    requests = []
    for i, ip in enumerate(ips()):
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in signed(ip).items())
        path = PATHS[i % len(PATHS)]
        requests.append(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{hdrs}\r\n".encode())
    latencies: list[float] = []
    errors = 0
    count = 0
    end = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors, count
        reader, writer = await asyncio.open_connection(host, int(port))
        i = n
        try:
            while time.perf_counter() < end and count < MAX_REQUESTS:
                t0 = time.perf_counter()
                status = await _get(reader, writer, requests[(i * 7) % len(requests)])
                latencies.append(time.perf_counter() - t0)
                count += 1
                if status != 200:
                    errors += 1
                i += clients
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return count, errors, latencies, elapsed


def run_in_child(url: str, seconds: float, clients: int
                 ) -> tuple[int, int, list[float], float, float]:
    """:func:`run` in a process of its own (forked: one thread, no fake compute in it);
    its result and the CPU seconds the clients used."""
    ctx = multiprocessing.get_context("fork")
    receiving, sending = ctx.Pipe(duplex=False)

    def child() -> None:
        started = time.process_time()
        result = asyncio.run(run(url, seconds, clients))
        sending.send((*result, time.process_time() - started))
        sending.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if not receiving.poll(seconds + 120):
            raise RuntimeError("the client process gave no result")
        got: tuple[int, int, list[float], float, float] = receiving.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return got


def report(name: str, result: tuple[int, int, list[float], float, float], lookups: int,
           cpu: float) -> None:
    count, errors, lat, elapsed, client_cpu = result
    lat.sort()
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    p999 = lat[min(len(lat) - 1, int(len(lat) * 0.999))] * 1000
    load = os.getloadavg()[0]
    n = max(count, 1)
    print(f"{name:<6} {count / elapsed:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
          f"p99.9 {p999:6.1f} ms   max {lat[-1] * 1000:6.1f} ms   "
          f"server CPU {cpu / n * 1e6:4.0f} us/request   "
          f"clients' CPU {client_cpu / n * 1e6:4.0f} us/request   requests {count}  "
          f"errors {errors}  compute lookups {lookups}  load average {load:.1f}", flush=True)


def scenario(name: str, ttl: float, args: argparse.Namespace, tmp: Path) -> None:
    compute = FakeCompute()
    for n, ip in enumerate(ips()):
        compute.docs[(NET, ip)] = instance_doc(ip, n)
    proc = MetadataProcess(compute.url, tmp, cache_ttl=ttl, negative_ttl=ttl,
                           workers=args.workers)
    proc.env["STRATUS_DEFAULT__DEBUG"] = "false"
    try:
        proc.start()
        if ttl:
            with httpx.Client(base_url=proc.url) as http:
                for _ in range(args.workers * 3):  # every worker process fills its cache
                    for ip in ips():
                        http.get(PATHS[0], headers=signed(ip))
        before = compute.lookups
        assert proc.proc is not None
        cpu = tree_cpu(proc.proc.pid)
        result = run_in_child(proc.url, args.seconds, args.clients)
        report(name, result, compute.lookups - before, tree_cpu(proc.proc.pid) - cpu)
    finally:
        proc.stop()
        compute.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(f"stratus-metadata, {args.workers} worker(s), {args.clients} concurrent clients, "
          f"{INSTANCES} instances, {args.seconds:.0f} s per run")
    with tempfile.TemporaryDirectory(prefix="smeta-bench-") as tmp:
        scenario("warm", 300, args, Path(tmp))
        scenario("cold", 0, args, Path(tmp))


if __name__ == "__main__":
    main()
