"""The cost of TLS on the APIs (issue 13): the same services over https and over plain http.

Starts stratus-identity and stratus-image twice on one database each (SQLite, under
/tmp/ztl-bench-*): once plain http, once https with a certificate from a throw-away CA
(openssl; the image service validates tokens with identity over https then). For each,
with one keep-alive client (httpx), N sequential requests of:

- token validation: ``GET /v3/auth/tokens`` with ``X-Subject-Token`` (identity);
- an image list: ``GET /v2/images`` (image; its middleware caches the validation);
- a new connection per request (token validation): the TLS handshake's cost.

Prints requests/s, p50 and p99 in ms of each, and the https/http ratio. Figures, not
pass/fail (2 shared cores). Run from the repository root, in the project's virtualenv:

    .venv/bin/python benchmarks/https_overhead.py [--requests 500]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from test_tls_serve import HttpsIdentity, HttpsImage, make_pki  # noqa: E402

from helpers import IdentityServer, ImageServer, password_token  # noqa: E402


def measure(n: int, call: Callable[[], httpx.Response]) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms of ``n`` calls (after 20 warm-up calls)."""
    for _ in range(20):
        call().raise_for_status()
    times = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        resp = call()
        times.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
    elapsed = time.perf_counter() - started
    times.sort()
    return n / elapsed, statistics.median(times), times[min(len(times) - 1, int(n * 0.99))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ztl-bench-", dir="/tmp"))
    started: list[IdentityServer | ImageServer] = []
    try:
        pki = make_pki(root / "pki")
        context = ssl.create_default_context(cafile=str(pki.ca))
        db = f"sqlite:///{root}/identity.sqlite"
        plain_id = IdentityServer(root / "identity", db)
        plain_id.prepare()
        tls_id = HttpsIdentity(root / "identity", db, extra_env=pki.env("identity"))
        plain_img = ImageServer(root / "image", plain_id)
        plain_img.prepare()
        tls_img = HttpsImage(root / "image", tls_id, database_url=plain_img.env[
            "STRATUS_IMAGE__DATABASE_URL"], extra_env=pki.env("image"))
        os.environ["SSL_CERT_FILE"] = str(pki.ca)  # the helpers' readiness checks
        for server in (plain_id, tls_id, plain_img, tls_img):
            server.start()
            started.append(server)
        token = password_token(plain_id.url, "admin", "test-admin-secret", "admin")
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        rows = []
        for label, ident, img in (("http", plain_id, plain_img), ("https", tls_id, tls_img)):
            verify: ssl.SSLContext | bool = context if label == "https" else True
            with httpx.Client(verify=verify, timeout=30) as client:
                validate = measure(args.requests, functools.partial(
                    client.get, f"{ident.url}/v3/auth/tokens", headers=headers))
                images = measure(args.requests, functools.partial(
                    client.get, f"{img.url}/v2/images", headers={"X-Auth-Token": token}))

            def fresh(u: str = ident.url, v: ssl.SSLContext | bool = verify
                      ) -> httpx.Response:
                with httpx.Client(verify=v, timeout=30) as one:
                    return one.get(f"{u}/v3/auth/tokens", headers=headers)

            handshake = measure(max(50, args.requests // 5), fresh)
            rows.append((label, validate, images, handshake))
        print(f"{args.requests} sequential requests, one keep-alive connection "
              "(new connection: a fifth of them)")
        print(f"{'':6} {'validate req/s':>15} {'p50':>7} {'p99':>7} | {'images req/s':>13} "
              f"{'p50':>7} {'p99':>7} | {'new conn req/s':>15} {'p50':>7} {'p99':>7}")
        for label, v, i, h in rows:
            print(f"{label:6} {v[0]:15.0f} {v[1]:7.2f} {v[2]:7.2f} | {i[0]:13.0f} {i[1]:7.2f} "
                  f"{i[2]:7.2f} | {h[0]:15.0f} {h[1]:7.2f} {h[2]:7.2f}")
        (_, hv, hi, hh), (_, sv, si, sh) = rows
        print(f"https/http requests/s: validate {sv[0] / hv[0]:.2f}, images {si[0] / hi[0]:.2f}, "
              f"new connection {sh[0] / hh[0]:.2f}; p50 ratio: validate {sv[1] / hv[1]:.2f}, "
              f"images {si[1] / hi[1]:.2f}, new connection {sh[1] / hh[1]:.2f}")
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
