"""Identity benchmark: password-hash cost, token issue and validation rates.

Prints figures; asserts nothing. In-process numbers call the identity logic
directly on a temporary SQLite database; HTTP numbers go through a real
stratus-identity process on 127.0.0.1 (one uvicorn worker), sequentially and
with a few concurrent clients. Every loop is bounded by count and by time.
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/identity_tokens.py [--seconds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import ADMIN_PASSWORD, IdentityServer
from stratus.common import db
from stratus.common.db import Database
from stratus.identity.bootstrap import bootstrap
from stratus.identity.core import Identity
from stratus.identity.passwords import hash_password, verify_password
from stratus.identity.tokens import KeyRepository, TokenSealer

MAX_ITERATIONS = 20000


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(operations per second, p50 latency in ms) of fn run for about `seconds`."""
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(lat) < MAX_ITERATIONS:
        t0 = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t0)
    return len(lat) / sum(lat), statistics.median(lat) * 1000


def concurrent_rate(fn: Callable[[], object], seconds: float, workers: int) -> float:
    counts = [0] * workers
    end = time.perf_counter() + seconds

    def loop(i: int) -> None:
        while time.perf_counter() < end and counts[i] < MAX_ITERATIONS:
            fn()
            counts[i] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(loop, range(workers)))
    return sum(counts) / (time.perf_counter() - t0)


def auth_body(project: bool = True) -> dict:
    body: dict = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            }
        }
    }
    if project:
        body["auth"]["scope"] = {"project": {"name": "admin", "domain": {"id": "default"}}}
    return body


def row(label: str, value: str) -> None:
    print(f"  {label:<58} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    secs = args.seconds

    print("Password hashing (one call each)")
    for algo in ("argon2id", "bcrypt"):
        hashed = hash_password("benchmark-password", algo)
        ops, p50 = rate(lambda a=algo: hash_password("benchmark-password", a), secs)
        row(f"{algo} hash", f"{p50:7.1f} ms  ({ops:6.1f}/s)")
        ops, p50 = rate(lambda h=hashed: verify_password("benchmark-password", h), secs)
        row(f"{algo} verify", f"{p50:7.1f} ms  ({ops:6.1f}/s)")

    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root}/bench.sqlite"
        db.sync("stratus.identity", url)
        repo = KeyRepository(root / "keys")
        repo.setup()
        ident = Identity(Database(url, "identity"), TokenSealer(repo))
        bootstrap(ident, password=ADMIN_PASSWORD, public_url="http://127.0.0.1:5000")
        token, _ = ident.authenticate(auth_body())
        rescope = {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": token}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }

        print("\nIn-process (SQLite, no HTTP)")
        ops, p50 = rate(lambda: ident.authenticate(auth_body()), secs)
        row("issue, password method (argon2id verify included)", f"{ops:8.1f}/s  p50 {p50:.2f} ms")
        ops, p50 = rate(lambda: ident.authenticate(rescope), secs)
        row("issue, token method (no password hash)", f"{ops:8.1f}/s  p50 {p50:.2f} ms")
        ops, p50 = rate(lambda: ident.sealer.unseal(token), secs)
        row("decrypt only (Fernet)", f"{ops:8.1f}/s  p50 {p50:.3f} ms")
        ops, p50 = rate(lambda: ident.validate(token), secs)
        row(
            "validate (decrypt + revocation + user/project/roles)",
            f"{ops:8.1f}/s  p50 {p50:.2f} ms",
        )
        ident.db.dispose()

        srv = IdentityServer(root / "http", f"sqlite:///{root}/http.sqlite")
        srv.prepare()
        srv.start()
        try:
            client = httpx.Client(timeout=30)
            admin = srv.token()
            vheaders = {"X-Auth-Token": admin, "X-Subject-Token": admin}

            def issue_http() -> None:
                assert client.post(f"{srv.url}/v3/auth/tokens", json=auth_body()).status_code == 201

            def rescope_http() -> None:
                body = {
                    "auth": {
                        "identity": {"methods": ["token"], "token": {"id": admin}},
                        "scope": rescope["auth"]["scope"],
                    }
                }
                assert (
                    client.post(f"{srv.url}/v3/auth/tokens?nocatalog", json=body).status_code == 201
                )

            def validate_http() -> None:
                assert (
                    client.get(f"{srv.url}/v3/auth/tokens?nocatalog", headers=vheaders).status_code
                    == 200
                )

            print(f"\nOver HTTP (stratus-identity, 1 worker, SQLite, {srv.url})")
            ops, p50 = rate(issue_http, secs)
            row("issue, password method, 1 client", f"{ops:8.1f}/s  p50 {p50:.2f} ms")
            ops, p50 = rate(rescope_http, secs)
            row("issue, token method, 1 client", f"{ops:8.1f}/s  p50 {p50:.2f} ms")
            ops, p50 = rate(validate_http, secs)
            row("validate (GET /v3/auth/tokens), 1 client", f"{ops:8.1f}/s  p50 {p50:.2f} ms")
            ops = concurrent_rate(validate_http, secs, args.concurrency)
            row(f"validate, {args.concurrency} concurrent clients", f"{ops:8.1f}/s")
            ops = concurrent_rate(issue_http, secs, args.concurrency)
            row(f"issue, password method, {args.concurrency} concurrent clients", f"{ops:8.1f}/s")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
