"""Object storage throughput, side by side in one run: PUT and GET MB/s of one large
object through stratus-object (three replicas on three devices of this disk) against
``cp`` of the same file on this disk, then 4 KiB object PUTs and GETs per second with 1
and 16 concurrent clients, and the load average when it ran.

Starts a real stratus-identity and stratus-object under a temporary directory (prefix
``zos-bench-``), stops them by pid and removes the directory at the end. By default
(``--layout servers``) the three devices belong to three real ``stratus-object-server``
processes, as on a deployed cloud (the proxy streams every PUT to them over HTTP:
tests/integration/test_object_servers.py's ``StorageServer`` and ``Proxy``);
``--layout local`` opens them in the proxy's own process (the unit-test layout).
Figures, not pass/fail; the machine's two cores are shared.

    .venv/bin/python benchmarks/object_throughput.py [--size-mib 1024] [--small 400]
        [--layout servers|local]

Against a deployed cloud instead: ``--url https://<host>:8080/v1/AUTH_<project>
--token <token>`` (a member's token, e.g. ``openstack token issue -f value -c id``); the
script then makes the container ``bench`` there and deletes what it stored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "integration")]

from helpers import IdentityServer  # noqa: E402
from object_api import ObjectServer  # noqa: E402


def mb_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.1f} MB/s"


def peak_rss_mib(pid: int) -> float:
    """The largest peak resident size (VmHWM) of a process and its children, MiB (the
    proxy's hand-over parent and its worker)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(stat.parent.name))
    peak = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


@contextlib.contextmanager
def local_stack(root: Path, layout: str) -> Iterator[tuple[str, str, int]]:
    """A stratus-identity and a stratus-object (with three object servers for the
    ``servers`` layout) under ``root``; yields (the container URL, a token)."""
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    servers: list[object] = []
    proxy: ObjectServer
    try:
        identity.prepare()
        identity.start()
        if layout == "servers":
            from test_object_servers import Proxy, StorageServer

            sproxy = Proxy(root / "proxy", identity)
            sproxy.extra = {}
            proxy = sproxy
            stores = [StorageServer(root / f"srv{i}", root / "proxy" / "ring.json")
                      for i in range(3)]
            servers.extend(stores)
            for srv in stores:
                srv.prepare()
            sproxy.prepare_ring(stores)
            for srv in stores:
                srv.start()
        else:
            proxy = ObjectServer(root / "object", identity)
            proxy.prepare()
        proxy.start()
        token = identity.token()
        body = httpx.get(f"{identity.url}/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
        assert proxy.proc is not None
        yield (f"{proxy.url}/v1/AUTH_{body['token']['project']['id']}/bench", token,
               proxy.proc.pid)
    finally:
        with contextlib.suppress(NameError):
            proxy.stop()
        for srv in servers:
            srv.stop()  # type: ignore[attr-defined]
        identity.stop()


def run(base: str, token: str, root: Path, size_mib: int, small_count: int,
        cleanup: bool = False, proxy_pid: int = 0) -> None:
    """Measure and print (``cleanup``: delete every object stored, at the end)."""
    h = {"X-Auth-Token": token}
    httpx.put(base, headers=h, timeout=60).raise_for_status()
    big = root / "big.bin"
    size = size_mib * 1024 * 1024
    with open(big, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1024 * 1024))
    subprocess.run(["sync"], check=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(["cp", str(big), str(root / "copy.bin")], check=True)
    subprocess.run(["sync"], check=True)
    cp_time = time.perf_counter() - started
    (root / "copy.bin").unlink()
    names = ["big"]
    try:
        with httpx.Client(timeout=3600) as client:
            started = time.perf_counter()
            with open(big, "rb") as src:
                client.put(f"{base}/big", headers={**h, "Content-Length": str(size)},
                           content=iter(lambda: src.read(1 << 20), b"")).raise_for_status()
            put_time = time.perf_counter() - started
            started = time.perf_counter()
            got = 0
            with client.stream("GET", f"{base}/big", headers=h) as resp:
                for chunk in resp.iter_bytes(1 << 20):
                    got += len(chunk)
            get_time = time.perf_counter() - started
        assert got == size
        big.unlink()
        print(f"{size_mib} MiB object (3 replicas):")
        print(f"  cp of the file on this disk  {mb_s(size, cp_time)}  ({cp_time:.1f} s)")
        print(f"  PUT through stratus-object   {mb_s(size, put_time)}  ({put_time:.1f} s)")
        print(f"  GET through stratus-object   {mb_s(size, get_time)}  ({get_time:.1f} s)")
        if proxy_pid:
            print(f"  stratus-object's peak RSS    {peak_rss_mib(proxy_pid):8.1f} MiB")
        small = os.urandom(4096)
        for workers in (1, 16):
            with httpx.Client(timeout=120, limits=httpx.Limits(
                    max_connections=workers)) as client:
                def put(i: int, client: httpx.Client = client, workers: int = workers) -> None:
                    client.put(f"{base}/s{workers}-{i}", headers=h,
                               content=small).raise_for_status()

                def get(i: int, client: httpx.Client = client, workers: int = workers) -> None:
                    client.get(f"{base}/s{workers}-{i}", headers=h).raise_for_status()

                names += [f"s{workers}-{i}" for i in range(small_count)]
                for name, fn in (("PUT", put), ("GET", get)):
                    started = time.perf_counter()
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(fn, range(small_count)))
                    rate = small_count / (time.perf_counter() - started)
                    print(f"4 KiB {name}s, {workers:2d} client(s): {rate:8.1f} /s")
        load_after = os.getloadavg()
        print(f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f}"
              f" on {os.cpu_count()} cores")
    finally:
        with httpx.Client(timeout=120) as client:
            if not cleanup:
                names = []
            for name in names:
                client.delete(f"{base}/{name}", headers=h)
            client.delete(base, headers=h)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=400, help="4 KiB objects per run")
    parser.add_argument("--layout", choices=("servers", "local"), default="servers")
    parser.add_argument("--url", default="", help="a deployed cloud's account URL")
    parser.add_argument("--token", default="", help="a token for --url")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zos-bench-"))
    try:
        if args.url:
            run(f"{args.url.rstrip('/')}/bench", args.token, root, args.size_mib, args.small,
                cleanup=True)
        else:
            with local_stack(root, args.layout) as (base, token, pid):
                print(f"layout: {args.layout}")
                run(base, token, root, args.size_mib, args.small, proxy_pid=pid)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
