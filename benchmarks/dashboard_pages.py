"""The dashboard's instances page and overview with 10, 100 and 1,000 servers.

Starts the real identity, image, network and compute services and stratus-dashboard
(tests/stack.py, SQLite, all on this host), makes a project member, lifts the project's
compute quotas, and creates the servers through the compute API in batches
(``min_count``/``max_count``, no network); there is no compute host, so the guests are
fake: every server is scheduled, fails with "No valid host" and stays in ERROR with its
fault, which the page shows. For each size it signs in once and times (median of
``--rounds``) the server-side time of ``/project/instances/``, its live status refresh
``/project/instances/status.json`` and ``/project/`` (the ``Server-Timing`` header the
dashboard sets), the time the client saw, and the number of API calls each page made
(``X-Stratus-Api-Calls``): a constant, whatever the number of servers.

Figures, not pass/fail. Every name made carries ``zdb``; the services are stopped by pid
and the temporary directory removed at the end. Run from the repository root:

    .venv/bin/python benchmarks/dashboard_pages.py [--sizes 10,100,1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx

from dashboard_support import (
    DashClient,
    dashboard_stack,
    make_flavor,
    make_member,
)

PAGES = ("/project/instances/", "/project/instances/status.json", "/project/")


def scoped_token(identity_url: str, user: str, password: str, project_id: str) -> str:
    resp = httpx.post(f"{identity_url}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"id": project_id}}}})
    resp.raise_for_status()
    return str(resp.headers["X-Subject-Token"])


def grow(compute_url: str, token: str, image: str, flavor: str, want: int,
         have: int) -> int:
    """Create servers until the project has ``want`` (batches of at most 100)."""
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.47"}
    while have < want:
        n = min(100, want - have)
        resp = httpx.post(f"{compute_url}/v2.1/servers", headers=headers, timeout=600,
                          json={"server": {"name": f"zdb-bench-{have}", "imageRef": image,
                                           "flavorRef": flavor, "networks": "none",
                                           "min_count": n, "max_count": n}})
        assert resp.status_code == 202, resp.text
        have += n
    # wait until every server is out of BUILD (scheduled and failed: no host)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        servers = httpx.get(f"{compute_url}/v2.1/servers/detail", headers=headers,
                            timeout=120).json()["servers"]
        if len(servers) >= want and all(s["status"] != "BUILD" for s in servers):
            break
        time.sleep(1)
    return have


def measure(client: DashClient, path: str, rounds: int) -> tuple[float, float, str]:
    server, seen, calls = [], [], ""
    for _ in range(rounds):
        started = time.perf_counter()
        resp = client.http.get(path)
        seen.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text[:300]
        server.append(float(resp.headers["server-timing"].split("dur=")[1]))
        calls = resp.headers["x-stratus-api-calls"]
    return statistics.median(server), statistics.median(seen), calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="zdb-bench-") as tmp, \
            dashboard_stack(Path(tmp)) as (st, dash):
        admin = st.identity.token()
        flavor = make_flavor(st.compute.url, admin, "zdb-bench-tiny")
        member = make_member(st.identity, "zdb-bench")
        resp = httpx.put(f"{st.compute.url}/v2.1/os-quota-sets/{member.project_id}",
                         headers={"X-Auth-Token": admin}, json={"quota_set": {
                             "instances": -1, "cores": -1, "ram": -1}})
        assert resp.status_code == 200, resp.text
        token = scoped_token(st.identity.url, member.name, member.password,
                             member.project_id)
        image = httpx.post(f"{st.image.url}/v2/images", headers={"X-Auth-Token": token},
                           json={"name": "zdb-bench-image", "disk_format": "raw",
                                 "container_format": "bare"}).json()["id"]
        httpx.put(f"{st.image.url}/v2/images/{image}/file", content=b"\0" * 4096,
                  headers={"X-Auth-Token": token,
                           "Content-Type": "application/octet-stream"}).raise_for_status()
        client = DashClient(dash.url)
        client.login(member.name, member.password)
        print(f"{'servers':>8} {'page':<32} {'server ms':>10} {'client ms':>10} "
              f"{'API calls':>9}")
        have = 0
        for size in sizes:
            started = time.perf_counter()
            have = grow(st.compute.url, token, image, flavor, size, have)
            print(f"# {size} servers ready ({time.perf_counter() - started:.1f} s)",
                  flush=True)
            for page in PAGES:
                client.get(page)  # warm
                server, seen, calls = measure(client, page, args.rounds)
                print(f"{size:>8} {page:<32} {server:>10.1f} {seen:>10.1f} {calls:>9}",
                      flush=True)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
