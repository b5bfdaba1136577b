"""Metadata benchmark: requests per second and p50/p99 latency of stratus-metadata.

A real ``stratus-metadata`` process (uvicorn, 127.0.0.1) in front of the fake
compute API of tests/integration/test_metadata_server.py (a threaded
http.server on 127.0.0.1 answering the metadata lookup). 100 concurrent
clients (keep-alive connections of a minimal asyncio HTTP client) send
signed requests, as the proxies would, for a mix
of paths a cloud-init crawl asks for, spread over 200 instances:

* warm: ``cache_ttl`` 300 s, the cache filled before measuring;
* cold: ``cache_ttl`` 0, every request asks the compute API (lookup + render).

Besides requests per second and p50/p99 (and p99.9 and the slowest) it prints how evenly
the server served its connections (requests per connection, min / median / max, and the
worst connection's own p99: a server favouring some connections shows a spread here), how
often the service was preempted (involuntary context switches: another process took its
core, a woken client included), the CPU time the service's processes (the hand-over parent
and its workers) used per request during the run, the CPU time the clients used per
request, and the load average: on a shared machine the wall-clock figures move with
everyone else's work, the CPU time per request much less (issue 17). The clients run in a
process of their own (one thread, an event loop; each connection an ``asyncio.Protocol``,
or with ``--client streams`` the earlier asyncio-streams client), not in the process that
holds the fake compute API's threads, so their CPU time is theirs alone; on two cores the
server and the clients each need one, so a client costing as much CPU per request as the
server halves what the server can show.

Prints figures; asserts nothing. Bounded by time and count.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/metadata_requests.py [--seconds 5] [--clients 100] [--workers 1]
        [--warm-only]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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


def tree_switches(pid: int) -> int:
    """Involuntary context switches so far of ``pid`` and its descendants: each one is
    the scheduler taking a core from the service while it had work (another process's
    turn), the wait that shows in the tail on a shared machine."""
    total = 0
    todo = [pid]
    while todo:
        cur = todo.pop()
        try:
            status = Path(f"/proc/{cur}/status").read_text()
            children = Path(f"/proc/{cur}/task/{cur}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("nonvoluntary_ctxt_switches:"):
                total += int(line.split()[1])
        todo.extend(int(c) for c in children)
    return total


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


Result = tuple[int, int, list[float], float, list[tuple[int, float]]]


async def run(url: str, seconds: float, clients: int) -> Result:
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
    per_connection: list[tuple[int, float]] = []  # (requests, its own p99)
    errors = 0
    count = 0
    end = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors, count
        reader, writer = await asyncio.open_connection(host, int(port))
        i = n
        mine: list[float] = []
        try:
            while time.perf_counter() < end and count < MAX_REQUESTS:
                t0 = time.perf_counter()
                status = await _get(reader, writer, requests[(i * 7) % len(requests)])
                mine.append(time.perf_counter() - t0)
                count += 1
                if status != 200:
                    errors += 1
                i += clients
        finally:
            writer.close()
            latencies.extend(mine)
            mine.sort()
            per_connection.append(
                (len(mine), mine[min(len(mine) - 1, int(len(mine) * 0.99))] if mine else 0.0))

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return count, errors, latencies, elapsed, per_connection


class _Connection(asyncio.Protocol):
    """One keep-alive connection of :func:`run_lean`: sends a request, reads the answer
    in ``data_received`` (its latency taken there, as the bytes arrive), sends the next."""

    def __init__(self, requests: list[bytes], first: int, stride: int, end: float,
                 shared: dict[str, int], done: asyncio.Future[None]) -> None:
        self.requests, self.i, self.stride, self.end = requests, first, stride, end
        self.shared, self.done = shared, done
        self.latencies: list[float] = []
        self.buf = b""
        self.t0 = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.end or self.shared["count"] >= MAX_REQUESTS:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.buf = b""
        self.t0 = time.perf_counter()
        self.transport.write(self.requests[(self.i * 7) % len(self.requests)])
        self.i += self.stride

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buf[:head_end].lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop > 0 else None])
        if len(self.buf) < head_end + 4 + length:
            return
        self.latencies.append(time.perf_counter() - self.t0)
        self.shared["count"] += 1
        if self.buf[9:12] != b"200":
            self.shared["errors"] += 1
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _same(conn: _Connection) -> _Connection:
    return conn


async def run_lean(url: str, seconds: float, clients: int) -> Result:
    """:func:`run` with each connection an ``asyncio.Protocol`` instead of a stream: about
    a third of the client CPU per request, and the latency taken in the callback that
    receives the answer rather than in a coroutine resumed at the loop's next turn."""
    host, port = url.split("//")[1].split(":")
    requests = []
    for i, ip in enumerate(ips()):
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in signed(ip).items())
        requests.append(f"GET {PATHS[i % len(PATHS)]} HTTP/1.1\r\nHost: {host}\r\n{hdrs}\r\n"
                        .encode())
    loop = asyncio.get_running_loop()
    shared = {"count": 0, "errors": 0}
    end = time.perf_counter() + seconds
    conns: list[_Connection] = []
    started = time.perf_counter()
    for n in range(clients):
        done: asyncio.Future[None] = loop.create_future()
        conn = _Connection(requests, n, clients, end, shared, done)
        await loop.create_connection(functools.partial(_same, conn), host, int(port))
        conns.append(conn)
    await asyncio.gather(*(c.done for c in conns))
    elapsed = time.perf_counter() - started
    latencies: list[float] = []
    per_connection: list[tuple[int, float]] = []
    for c in conns:
        latencies.extend(c.latencies)
        mine = sorted(c.latencies)
        per_connection.append(
            (len(mine), mine[min(len(mine) - 1, int(len(mine) * 0.99))] if mine else 0.0))
    return shared["count"], shared["errors"], latencies, elapsed, per_connection


def run_in_child(url: str, seconds: float, clients: int, lean: bool = True
                 ) -> tuple[Result, float]:
    """:func:`run` in a process of its own (forked: one thread, no fake compute in it);
    its result and the CPU seconds the clients used."""
    ctx = multiprocessing.get_context("fork")
    receiving, sending = ctx.Pipe(duplex=False)

    def child() -> None:
        started = time.process_time()
        result = asyncio.run((run_lean if lean else run)(url, seconds, clients))
        sending.send((result, time.process_time() - started))
        sending.close()

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    try:
        if not receiving.poll(seconds + 120):
            raise RuntimeError("the client process gave no result")
        got: tuple[Result, float] = receiving.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return got


def report(name: str, got: tuple[Result, float], lookups: int, cpu: float,
           switches: int) -> None:
    (count, errors, lat, elapsed, per_connection), client_cpu = got
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
    counts = sorted(c for c, _ in per_connection)
    worst = max((p for _, p in per_connection), default=0.0)
    print(f"{'':<6} per connection: requests min {counts[0] if counts else 0} / median "
          f"{statistics.median(counts) if counts else 0:.0f} / max {counts[-1] if counts else 0}"
          f", the worst connection's p99 {worst * 1000:.1f} ms; the service was preempted "
          f"{switches / max(elapsed, 1e-9):.0f} times a second", flush=True)


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
        cpu, switches = tree_cpu(proc.proc.pid), tree_switches(proc.proc.pid)
        result = run_in_child(proc.url, args.seconds, args.clients,
                              lean=args.client == "protocol")
        report(name, result, compute.lookups - before, tree_cpu(proc.proc.pid) - cpu,
               tree_switches(proc.proc.pid) - switches)
    finally:
        proc.stop()
        compute.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warm-only", action="store_true", help="skip the cold run")
    parser.add_argument("--client", choices=("protocol", "streams"), default="protocol",
                        help="the clients' connections: asyncio protocols (lean, the default) "
                             "or asyncio streams (the client before 2026-12-07's second half)")
    args = parser.parse_args()
    print(f"stratus-metadata, {args.workers} worker(s), {args.clients} concurrent clients "
          f"({args.client}), "
          f"{INSTANCES} instances, {args.seconds:g} s per run")
    with tempfile.TemporaryDirectory(prefix="smeta-bench-") as tmp:
        scenario("warm", 300, args, Path(tmp))
        if not args.warm_only:
            scenario("cold", 0, args, Path(tmp))


if __name__ == "__main__":
    main()
