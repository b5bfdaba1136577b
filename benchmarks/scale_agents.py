"""Scale simulation of the compute side (prints figures; not a pass/fail test).

One compute API process (the real application under uvicorn, SQLite, the tests' fake image
and network APIs, the tests' fixed tokens) and N compute agents (default 100) in this
process, each the real ``ComputeAgent`` loop (long-polled assignments, heartbeats, reports
over HTTP) with the fake virt driver. Then M servers (default 1,000) are booted through
``POST /v2.1/servers``, one request at a time. Printed:

* scheduling decisions per second (the creates: each one filters, weighs and claims a host);
* the agents' requests per second at the API while idle and during the boots, by kind
  (heartbeats, assignment long-polls, reports);
* the time until every server is ACTIVE (every agent converged) after the last create.

Not simulated here: the network agents (the issue's 100 fake-L2 network agents against
the network API); see the report of issue 11.

    .venv/bin/python benchmarks/scale_agents.py [--agents 100] [--servers 1000]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx

IMAGE_DATA = b"QFI\xfb" + bytes(range(256)) * 64
FLAVOR = "1"


def serve(port: int, url: str) -> None:
    """The compute API process (``--serve``)."""
    import uvicorn

    from compute_api import IMAGE, FakeDownstream, fake_validate, make_core
    from stratus.compute import models as m
    from stratus.compute.app import build_app
    from stratus.compute.core import Settings
    from stratus.compute.quotas import QUOTA_RESOURCES

    fake = FakeDownstream()
    fake.images[IMAGE].update(
        checksum=hashlib.md5(IMAGE_DATA).hexdigest(), os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(IMAGE_DATA).hexdigest(), size=len(IMAGE_DATA))
    core = make_core(url, Settings(reserved_host_memory_mb=0,
                                   quotas={r: -1 for r in QUOTA_RESOURCES}), fake)
    from stratus.common.timeutil import utcnow
    with core.db.session() as s:
        s.add(m.Flavor(id=FLAVOR, name="m1.nano", vcpus=1, ram=64, disk=1, ephemeral=0,
                       swap=0, rxtx_factor=1.0, is_public=True, extra_specs={},
                       created_at=utcnow()))
        s.commit()
    app = build_app(core, fake_validate, public_url=f"http://127.0.0.1:{port}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class CountingApi:
    """An agent's HttpComputeApi, counting its calls by kind."""

    def __init__(self, inner: Any, counts: collections.Counter[str], lock: threading.Lock):
        self.inner, self.counts, self.lock = inner, counts, lock

    def _count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def assignments(self, wait: float | None = None, since: int | None = None) -> Any:
        self._count("assignments")
        return self.inner.assignments(wait=wait, since=since)

    def report(self, server_id: str, report: Any) -> None:
        self._count("report")
        self.inner.report(server_id, report)

    def heartbeat(self, resources: Any) -> None:
        self._count("heartbeat")
        self.inner.heartbeat(resources)


class Images:
    def fetch(self, image_id: str) -> Iterator[bytes]:
        yield IMAGE_DATA

    def upload(self, image_id: str, path: str) -> None:
        raise NotImplementedError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle measurement")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.db)
        return 0

    from network_api import ADMIN, ALICE
    from stratus.agent.compute.apis import HttpComputeApi
    from stratus.agent.compute.reconcile import ComputeAgent
    from stratus.agent.compute.state import AgentSettings
    from stratus.agent.compute.virt.fake import FakeDriver
    from stratus.common.clients import StaticToken

    root = Path(tempfile.mkdtemp(prefix="zho-scale-"))
    port = free_port()
    api = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                            "--db", f"sqlite:///{root}/compute.sqlite"])
    base = f"http://127.0.0.1:{port}/v2.1"
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        counts: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()
        agents = []
        for i in range(args.agents):
            host = f"zho{i:04d}"
            settings = AgentSettings(host=host, instances_path=str(root / host), workers=1,
                                     vcpus=64, memory_mb=65536, disk_gb=1000,
                                     vif_plug_wait=False, resume_guests_state_on_host_boot=False)
            inner = HttpComputeApi(base, host, StaticToken(ADMIN))
            agent = ComputeAgent(settings, FakeDriver(), CountingApi(inner, counts, lock),
                                 Images(), None, render=lambda doc: {})
            agent.heartbeat()
            agents.append(agent)
        for agent in agents:
            t = threading.Thread(target=agent.run, args=(stop,), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(3)
        before = dict(counts)
        time.sleep(args.idle)
        idle = {k: (counts[k] - before.get(k, 0)) / args.idle for k in counts}
        print(f"{args.agents} compute agents, idle, requests/s at the API: "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(idle.items()))
              + f"; total {sum(idle.values()):.1f}")

        client = httpx.Client(base_url=base, timeout=60,
                              headers={"X-Auth-Token": ALICE,
                                       "OpenStack-API-Version": "compute 2.47"})
        before = dict(counts)
        ids: list[str] = []
        started = time.perf_counter()
        for i in range(args.servers):
            r = client.post("/servers", json={"server": {
                "name": f"zho{i}", "imageRef": "11111111-1111-4111-8111-111111111111",
                "flavorRef": FLAVOR, "networks": "none"}})
            if r.status_code != 202:
                print(f"create {i}: {r.status_code} {r.text[:200]}")
                return 1
            ids.append(r.json()["server"]["id"])
        created = time.perf_counter()
        rate = args.servers / (created - started)
        print(f"{args.servers} creates (each a scheduling decision and claim): "
              f"{rate:.1f} decisions/s ({(created - started) * 1000 / args.servers:.1f} ms "
              "per create, sequential, while the agents poll and converge)")
        pending = set(ids)
        while pending and time.perf_counter() - created < 900:
            r = client.get("/servers/detail", params={"limit": 1000, "all_tenants": 1},
                           headers={"X-Auth-Token": ADMIN})
            r.raise_for_status()
            states = {s["id"]: s["status"] for s in r.json()["servers"]}
            if len(states) < len(ids) and not r.json().get("servers_links"):
                print(f"the listing shows {len(states)} of {len(ids)} servers")
            errors = [sid for sid in pending if states.get(sid) == "ERROR"]
            if errors:
                print(f"{len(errors)} servers went to ERROR")
                return 1
            pending = {sid for sid in pending if states.get(sid) != "ACTIVE"}
            if pending:
                time.sleep(0.5)
        converged = time.perf_counter()
        during = converged - started
        busy = {k: (counts[k] - before.get(k, 0)) / during for k in counts}
        if pending:
            print(f"{len(pending)} servers not ACTIVE after 900 s")
            return 1
        print(f"every server ACTIVE {converged - created:.1f} s after the last create "
              f"({during:.1f} s from the first)")
        print("agents' requests/s at the API during the boots: "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(busy.items()))
              + f"; total {sum(busy.values()):.1f}")
        return 0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
        api.terminate()
        api.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
