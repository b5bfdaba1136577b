"""Scale simulation of both agent kinds against their APIs (prints figures; not a test).

Processes: one compute API (``scale_agents.py --serve``: the real application, SQLite,
the tests' fake image API and fixed tokens) and one network API (the real application
under uvicorn, the tests' fixed tokens; SQLite, or with ``--replicas 2`` two processes
on one PostgreSQL database, a private cluster, behind a small round-robin TCP balancer
started by this script: see docs/api-replicas.md). In this process, N compute agents
(the real ``ComputeAgent`` loop, fake virt driver) and N network agents (the real
``NetworkAgent`` loop and its long-poll watcher over ``HttpSource``, fake L2/DHCP/router/
firewall drivers whose host has every device) for the same N host names.

M servers are booted in batches: each server's create (``POST /servers``: a scheduling
decision and claim) and then, as the compute API would, its port bound to the host the
scheduler chose (``POST /v2.0/ports`` with ``binding:host_id``). Printed:

* scheduling decisions per second, and port creations per second;
* the agents' requests per second at each API while idle and during the boots, by kind
  (compute: heartbeats, assignment long-polls, reports; network: state reads,
  long-polls, registrations, port reports);
* the network agents' passes during the boots (per-host generations: a port wakes its own
  host's agent and those of the hosts with a port in one of its security groups, whose
  documents list the group's member addresses; ``--no-security-groups`` leaves only the
  first, about one pass per port, where one global generation woke every agent);
* the time until every server is ACTIVE and every port ACTIVE (every agent converged)
  after the last create.

    .venv/bin/python benchmarks/agent_scale.py [--agents 100] [--servers 1000]
        [--batch 50] [--replicas 1|2]
    .venv/bin/python benchmarks/agent_scale.py --agents 10 --servers 50 --idle 10  # < 1 min

``--global-generation`` makes every change bump every host (the one global generation
of before) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from scale_agents import FLAVOR, CountingApi, Images, free_port

from stratus.agent.network.sources import HttpSource

PREFIX = "zsc"
# Seconds an idle HTTP connection stays open at the APIs: above the agents' 10 s heartbeat,
# so that an agent never sends on a connection the server is closing (uvicorn's default
# of 5 s made a few requests per run end in "connection reset" under load).
KEEP_ALIVE = 75
IMAGE = "11111111-1111-4111-8111-111111111111"


def serve_network(port: int, url: str, every: bool = False) -> None:
    """One network API process (``--serve-network``); ``every``: every change bumps every
    host's generation (as the one global generation did: the comparison)."""
    import uvicorn

    if every:
        from stratus.network import tracking

        def resolve_to_every(self: tracking.Touched, _s: Any) -> None:
            self.every = True

        tracking.Touched.resolve = resolve_to_every

    from network_api import fake_validate, make_core
    from stratus.network.app import build_app
    from stratus.network.settings import QUOTA_RESOURCES, Settings

    core = make_core(url, Settings(quotas={r: -1 for r in QUOTA_RESOURCES}))
    app = build_app(core, fake_validate, public_url=f"http://127.0.0.1:{port}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                timeout_keep_alive=KEEP_ALIVE)


def serve_compute(port: int, url: str) -> None:
    """The compute API process (``--serve-compute``): scale_agents.py's, with the
    keep-alive below."""
    import uvicorn
    from scale_agents import serve

    run = uvicorn.run
    uvicorn.run = lambda app, **kw: run(app, **{**kw, "timeout_keep_alive": KEEP_ALIVE})
    serve(port, url)


def balance(port: int, backends: list[int]) -> None:
    """A round-robin TCP balancer (``--balance``): each connection to the next backend."""
    turn = itertools.cycle(backends)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", next(turn))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class CountingSource(HttpSource):
    """A network agent's HttpSource, counting its calls by kind."""

    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def _count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def get(self) -> Any:
        with self._lock:
            prefetched = self._prefetched is not None
        if not prefetched:
            self._count("state")
        return super().get()

    def watch(self, since: int, timeout: float) -> int | None:
        self._count("long-poll")
        return super().watch(since, timeout)

    def register(self) -> None:
        self._count("register")
        super().register()

    def report_ports(self, active: list[str], down: list[str]) -> None:
        self._count("ports report")
        super().report_ports(active, down)


class EveryDevice(set[str]):
    """A fake host on which every device the agent looks for exists (the compute agent's
    taps, which the fake virt driver does not make)."""

    def __contains__(self, item: object) -> bool:
        return True


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def rates(counts: collections.Counter[str], before: dict[str, int], seconds: float) -> str:
    per = {k: (counts[k] - before.get(k, 0)) / seconds for k in counts}
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(per.items())) + (
        f"; total {sum(per.values()):.1f}")


def start_agents(args: argparse.Namespace, root: Path, compute_url: str, network_url: str,
                 stop: threading.Event) -> tuple[list[Any], list[Any], list[threading.Thread],
                                                 collections.Counter[str]]:
    from network_api import ADMIN
    from stratus.agent.compute.apis import HttpComputeApi
    from stratus.agent.compute.reconcile import ComputeAgent
    from stratus.agent.compute.state import AgentSettings
    from stratus.agent.compute.virt.fake import FakeDriver
    from stratus.agent.network.drivers.fake import (
        FakeDhcp,
        FakeFirewall,
        FakeHost,
        FakeL2,
        FakeMetadata,
        FakeRouters,
    )
    from stratus.agent.network.reconcile import NetworkAgent, NetworkDrivers
    from stratus.common.clients import StaticToken

    ccounts: collections.Counter[str] = collections.Counter()
    clock = threading.Lock()
    computes, networks, threads = [], [], []
    for i in range(args.agents):
        host = f"{PREFIX}{i:04d}"
        settings = AgentSettings(host=host, instances_path=str(root / host), workers=1,
                                 vcpus=64, memory_mb=65536, disk_gb=1000,
                                 vif_plug_wait=False, resume_guests_state_on_host_boot=False)
        inner = HttpComputeApi(compute_url, host, StaticToken(ADMIN))
        agent = ComputeAgent(settings, FakeDriver(), CountingApi(inner, ccounts, clock),
                             Images(), None, render=lambda doc: {})
        agent.heartbeat()
        computes.append(agent)
        fake = FakeHost()
        fake.devices = EveryDevice()
        source = CountingSource(f"{network_url}/v2.0/stratus-agent/hosts/{{host}}", host,
                                StaticToken(ADMIN), timeout=60,
                                underlay_ip=f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}")
        drivers = NetworkDrivers(FakeL2(fake), FakeDhcp(fake), FakeRouters(fake),
                                 FakeFirewall(fake), FakeMetadata(fake))
        networks.append(NetworkAgent(drivers, source, None, source))
    for agent in computes:
        threads.append(threading.Thread(target=agent.run, args=(stop,), daemon=True))
    for nagent in networks:
        threads.append(threading.Thread(target=nagent.run, args=(30.0, 5.0, stop),
                                        daemon=True))
    for t in threads:
        t.start()
    return computes, networks, threads, ccounts


def boot(args: argparse.Namespace, compute: httpx.Client, network: httpx.Client,
         net_id: str) -> tuple[list[str], list[str], float, float, float]:
    """Create the servers and their ports in batches; answers the ids and the seconds
    spent creating servers, creating ports, and in all."""
    from network_api import ADMIN

    servers: list[str] = []
    ports: list[str] = []
    scheduling = porting = 0.0
    started = time.perf_counter()

    def create(i: int) -> str:
        r = compute.post("/servers", json={"server": {
            "name": f"{PREFIX}{i}", "imageRef": IMAGE, "flavorRef": FLAVOR,
            "networks": "none"}})
        if r.status_code != 202:
            raise RuntimeError(f"create {i}: {r.status_code} {r.text[:200]}")
        return str(r.json()["server"]["id"])

    def port_for(server_id: str) -> str:
        show = compute.get(f"/servers/{server_id}", headers={"X-Auth-Token": ADMIN})
        host = show.json()["server"]["OS-EXT-SRV-ATTR:host"]
        body = {"network_id": net_id, "device_id": server_id, "device_owner": "compute:nova",
                "binding:host_id": host}
        if args.no_security_groups:
            body["security_groups"] = []
        r = network.post("/v2.0/ports", json={"port": body})
        if r.status_code != 201:
            raise RuntimeError(f"port of {server_id}: {r.status_code} {r.text[:200]}")
        return str(r.json()["port"]["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for first in range(0, args.servers, args.batch):
            batch = range(first, min(first + args.batch, args.servers))
            t0 = time.perf_counter()
            made = list(pool.map(create, batch))
            t1 = time.perf_counter()
            ports += list(pool.map(port_for, made))
            t2 = time.perf_counter()
            servers += made
            scheduling += t1 - t0
            porting += t2 - t1
    return servers, ports, scheduling, porting, time.perf_counter() - started


def converge(compute: httpx.Client, network: httpx.Client, servers: list[str],
             ports: list[str], limit: float) -> tuple[set[str], set[str]]:
    """Wait until every server and port is ACTIVE; answers those that are not."""
    from network_api import ADMIN

    left_servers, left_ports = set(servers), set(ports)
    deadline = time.perf_counter() + limit
    while (left_servers or left_ports) and time.perf_counter() < deadline:
        if left_servers:
            r = compute.get("/servers/detail", params={"limit": 100000, "all_tenants": 1},
                            headers={"X-Auth-Token": ADMIN})
            r.raise_for_status()
            states = {s["id"]: s["status"] for s in r.json()["servers"]}
            if any(states.get(s) == "ERROR" for s in left_servers):
                raise RuntimeError("a server went to ERROR")
            left_servers = {s for s in left_servers if states.get(s) != "ACTIVE"}
        if left_ports:
            r = network.get("/v2.0/ports", params={"device_owner": "compute:nova",
                                                   "fields": ["id", "status"]})
            r.raise_for_status()
            status = {p["id"]: p["status"] for p in r.json()["ports"]}
            left_ports = {p for p in left_ports if status.get(p) != "ACTIVE"}
        if left_servers or left_ports:
            time.sleep(0.5)
    return left_servers, left_ports


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100, help="compute and network agents each")
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50, help="servers per batch")
    ap.add_argument("--replicas", type=int, default=1, choices=(1, 2),
                    help="network API processes (2: on PostgreSQL behind a balancer)")
    ap.add_argument("--idle", type=float, default=35.0,
                    help="seconds of idle measurement (above the network agents' 30 s resync)")
    ap.add_argument("--no-security-groups", action="store_true",
                    help="ports in no security group (default: all in the project's default "
                         "group, whose member list is on every host with one of them)")
    ap.add_argument("--global-generation", action="store_true",
                    help="for comparison: every change wakes every network agent")
    ap.add_argument("--serve-network", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-compute", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--balance", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--to", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_network:
        serve_network(args.serve_network, args.db, args.global_generation)
        return 0
    if args.serve_compute:
        serve_compute(args.serve_compute, args.db)
        return 0
    if args.balance:
        balance(args.balance, [int(p) for p in args.to.split(",")])
        return 0

    from network_api import ADMIN, ALICE

    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-scale-"))
    procs: list[subprocess.Popen[bytes]] = []
    pg = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        cport = free_port()
        procs.append(subprocess.Popen([sys.executable, __file__, "--serve-compute",
                                       str(cport), "--db", f"sqlite:///{root}/compute.sqlite"]))
        if args.replicas == 1:
            url = f"sqlite:///{root}/network.sqlite"
        else:
            from helpers import Postgres
            pg = Postgres(root / "pg")
            pg.init()
            pg.start()
            url = pg.create_database(f"{PREFIX}_network")
        nports = [free_port() for _ in range(args.replicas)]
        for p in nports:  # one after the other: the first migrates the database
            procs.append(subprocess.Popen([
                sys.executable, __file__, "--serve-network", str(p), "--db", url,
                *(["--global-generation"] if args.global_generation else [])]))
            wait_up(f"http://127.0.0.1:{p}/", procs[-1])
        nport = nports[0]
        if args.replicas > 1:
            nport = free_port()
            procs.append(subprocess.Popen([sys.executable, __file__, "--balance", str(nport),
                                           "--to", ",".join(map(str, nports))]))
        wait_up(f"http://127.0.0.1:{cport}/healthcheck", procs[0])
        wait_up(f"http://127.0.0.1:{nport}/", procs[-1])
        compute_url = f"http://127.0.0.1:{cport}/v2.1"
        network_url = f"http://127.0.0.1:{nport}"
        network = httpx.Client(base_url=network_url, timeout=120,
                               headers={"X-Auth-Token": ADMIN})
        net = network.post("/v2.0/networks", json={"network": {"name": PREFIX}})
        net.raise_for_status()
        net_id = net.json()["network"]["id"]
        network.post("/v2.0/subnets", json={"subnet": {
            "network_id": net_id, "cidr": "10.128.0.0/16", "ip_version": 4,
            "enable_dhcp": False}}).raise_for_status()
        print(f"{args.agents} compute agents and {args.agents} network agents; network API: "
              + ("1 process on SQLite" if args.replicas == 1 else
                 f"{args.replicas} replicas on PostgreSQL behind a round-robin balancer")
              + ("; ONE GLOBAL GENERATION (comparison)" if args.global_generation else "")
              + ("; ports in no security group" if args.no_security_groups else
                 "; every port in the default security group"))

        _computes, networks, threads, ccounts = start_agents(
            args, root, compute_url, network_url, stop)
        ncounts = CountingSource.counts
        time.sleep(3)
        cbefore, nbefore = dict(ccounts), dict(ncounts)
        time.sleep(args.idle)
        print(f"idle, compute API requests/s: {rates(ccounts, cbefore, args.idle)}")
        print(f"idle, network API requests/s: {rates(ncounts, nbefore, args.idle)}")

        compute = httpx.Client(base_url=compute_url, timeout=120,
                               headers={"X-Auth-Token": ALICE,
                                        "OpenStack-API-Version": "compute 2.47"})
        cbefore, nbefore = dict(ccounts), dict(ncounts)
        passes = sum(a.passes for a in networks)
        skipped = sum(a.skipped for a in networks)
        started = time.perf_counter()
        servers, ports, scheduling, porting, took = boot(args, compute, network, net_id)
        created = time.perf_counter()
        print(f"{args.servers} servers in batches of {args.batch} (8 clients): "
              f"{args.servers / scheduling:.1f} scheduling decisions/s (creates), "
              f"{args.servers / porting:.1f} bound ports/s; {took:.1f} s in all")
        left_servers, left_ports = converge(compute, network, servers, ports, 900)
        converged = time.perf_counter()
        if left_servers or left_ports:
            print(f"not converged after 900 s: {len(left_servers)} servers, "
                  f"{len(left_ports)} ports")
            return 1
        during = converged - started
        worked = sum(a.passes for a in networks) - passes
        woke = worked + sum(a.skipped for a in networks) - skipped
        print(f"every server and port ACTIVE {converged - created:.1f} s after the last "
              f"create ({during:.1f} s from the first)")
        print(f"network agents' passes during the boots: {woke} for {args.servers} ports "
              f"({woke / args.servers:.2f} per port), {worked} of them with a changed state "
              f"(the others: woken for nothing, skipped after reading the state)")
        print(f"during the boots, compute API requests/s: {rates(ccounts, cbefore, during)}")
        print(f"during the boots, network API requests/s: {rates(ncounts, nbefore, during)}")
        return 0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
