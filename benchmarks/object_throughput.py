"""Object storage throughput, side by side in one run: PUT and GET MB/s of one large
object through stratus-object (three replicas on three devices of this disk) against
``cp`` of the same file on this disk, then 4 KiB object PUTs and GETs per second with 1
and 16 concurrent clients.

Starts a real stratus-identity and stratus-object (tests/helpers.py, tests/object_api.py)
under a temporary directory (prefix ``zob-bench-``), stops them by pid and removes the
directory at the end. Figures, not pass/fail; the machine's two cores are shared.

    .venv/bin/python benchmarks/object_throughput.py [--size-mib 1024] [--small 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import IdentityServer
from object_api import ObjectServer


def mb_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.1f} MB/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=400, help="4 KiB objects per run")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zob-bench-"))
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    server = ObjectServer(root / "object", identity)
    try:
        identity.prepare()
        identity.start()
        server.prepare()
        server.start()
        token = identity.token()
        body = httpx.get(f"{identity.url}/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
        base = f"{server.url}/v1/AUTH_{body['token']['project']['id']}/bench"
        h = {"X-Auth-Token": token}
        httpx.put(base, headers=h).raise_for_status()
        big = root / "big.bin"
        size = args.size_mib * 1024 * 1024
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1024 * 1024))
        started = time.perf_counter()
        subprocess.run(["cp", str(big), str(root / "copy.bin")], check=True)
        subprocess.run(["sync"], check=True)
        cp_time = time.perf_counter() - started
        (root / "copy.bin").unlink()
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
        print(f"{args.size_mib} MiB object (3 replicas):")
        print(f"  cp of the file on this disk  {mb_s(size, cp_time)}  ({cp_time:.1f} s)")
        print(f"  PUT through stratus-object   {mb_s(size, put_time)}  ({put_time:.1f} s)")
        print(f"  GET through stratus-object   {mb_s(size, get_time)}  ({get_time:.1f} s)")
        small = os.urandom(4096)
        for workers in (1, 16):
            with httpx.Client(timeout=120, limits=httpx.Limits(
                    max_connections=workers)) as client:
                def put(i: int, client: httpx.Client = client, workers: int = workers) -> None:
                    client.put(f"{base}/s{workers}-{i}", headers=h,
                               content=small).raise_for_status()

                def get(i: int, client: httpx.Client = client, workers: int = workers) -> None:
                    client.get(f"{base}/s{workers}-{i}", headers=h).raise_for_status()

                for name, fn in (("PUT", put), ("GET", get)):
                    started = time.perf_counter()
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(fn, range(args.small)))
                    rate = args.small / (time.perf_counter() - started)
                    print(f"4 KiB {name}s, {workers:2d} client(s): {rate:8.1f} /s")
    finally:
        server.stop()
        identity.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
