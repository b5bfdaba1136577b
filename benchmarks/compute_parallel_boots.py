"""Parallel boots on a deployed all-in-one cloud (prints figures; not a pass/fail test).

Boots N servers (default 5) at the same time through the compute API, with the admin
credentials of a clouds.yaml (default /etc/stratus/clouds.yaml, as `make aio` writes it), and
measures per server:

- request -> ACTIVE: from the POST /servers to the first GET that shows ACTIVE;
- request -> console marker: to the first console output holding the marker
  (`STRATUS-GUEST: ready` of the tiny test image: the guest has its DHCP address, its
  metadata, and SSH is up).

Prints min / median / max of both, then deletes the servers (and waits until they are gone).
Guests run under TCG on the development machine: keep N small (the cloud's quota and the
host's 2 cores bound what is meaningful).

Run on the deployed machine (`make aio`), from the repository root, in the project's
virtualenv (`make venv`: .venv with ``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/compute_parallel_boots.py \
        [--clouds-yaml PATH] [--count 5] [--image stratus-tiny] [--flavor m1.tiny] \
        [--network demo-net]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml


@dataclass
class Api:
    token: str
    endpoints: dict[str, str]

    @classmethod
    def login(cls, clouds_yaml: str, cloud: str) -> Api:
        with open(clouds_yaml, encoding="utf-8") as fh:
            auth = yaml.safe_load(fh)["clouds"][cloud]["auth"]
        url = auth["auth_url"].rstrip("/")
        if not url.endswith("/v3"):
            url += "/v3"
        resp = httpx.post(f"{url}/auth/tokens", timeout=30, json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "domain": {"id": "default"},
                "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}},
        }})
        resp.raise_for_status()
        endpoints = {
            service["type"]: endpoint["url"].rstrip("/")
            for service in resp.json()["token"]["catalog"]
            for endpoint in service["endpoints"]
            if endpoint["interface"] == "public"
        }
        return cls(resp.headers["X-Subject-Token"], endpoints)

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.endpoints[service] + path, timeout=60,
                             headers={"X-Auth-Token": self.token}, **kwargs)

    def find(self, service: str, path: str, key: str, name: str) -> str:
        resp = self.call("GET", service, path, params={"name": name})
        resp.raise_for_status()
        items = [item for item in resp.json()[key] if item.get("name") == name]
        if not items:
            sys.exit(f"no {key[:-1]} named {name!r}: run playbooks/demo.yml first")
        return str(items[0]["id"])


@dataclass
class Boot:
    name: str
    server_id: str = ""
    to_active: float | None = None
    to_marker: float | None = None
    error: str = ""
    events: list[str] = field(default_factory=list)


def boot_one(api: Api, boot: Boot, body: dict[str, Any], marker: str, timeout: float) -> None:
    started = time.monotonic()
    resp = api.call("POST", "compute", "/servers", json={"server": {**body, "name": boot.name}})
    if resp.status_code != 202:
        boot.error = f"create: {resp.status_code} {resp.text[:200]}"
        return
    boot.server_id = resp.json()["server"]["id"]
    deadline = started + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        if boot.to_active is None:
            server = api.call("GET", "compute", f"/servers/{boot.server_id}").json()["server"]
            if server["status"] == "ACTIVE":
                boot.to_active = now - started
            elif server["status"] == "ERROR":
                boot.error = f"ERROR: {server.get('fault')}"
                return
        if boot.to_active is not None:
            out = api.call("POST", "compute", f"/servers/{boot.server_id}/action",
                           json={"os-getConsoleOutput": {}})
            if out.status_code == 200 and marker in (out.json().get("output") or ""):
                boot.to_marker = time.monotonic() - started
                return
        time.sleep(0.5)
    boot.error = f"timed out after {timeout:.0f} s"


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no data"
    return (f"{label}: min {min(values):6.1f} s   median {statistics.median(values):6.1f} s   "
            f"max {max(values):6.1f} s   (n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds-yaml", default="/etc/stratus/clouds.yaml")
    parser.add_argument("--cloud", default="stratus")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--image", default="stratus-tiny")
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument("--network", default="demo-net")
    parser.add_argument("--marker", default="STRATUS-GUEST: ready")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    api = Api.login(args.clouds_yaml, args.cloud)
    body = {
        "imageRef": api.find("image", "/v2/images", "images", args.image),
        "flavorRef": api.find("compute", "/flavors", "flavors", args.flavor),
        "networks": [{"uuid": api.find("network", "/v2.0/networks", "networks", args.network)}],
    }
    run = uuid.uuid4().hex[:6]
    boots = [Boot(f"bench-{run}-{i}") for i in range(args.count)]
    threads = [threading.Thread(target=boot_one, args=(api, b, body, args.marker, args.timeout))
               for b in boots]
    wall = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - wall

    print(f"{args.count} parallel boots of {args.image} ({args.flavor}) on {args.network}, "
          f"wall time {wall:.1f} s")
    for b in boots:
        active = f"{b.to_active:6.1f} s" if b.to_active is not None else "     -  "
        ready = f"{b.to_marker:6.1f} s" if b.to_marker is not None else "     -  "
        print(f"  {b.name}: ACTIVE {active}   marker {ready}   {b.error}")
    print(summary("request -> ACTIVE        ", [b.to_active for b in boots
                                                 if b.to_active is not None]))
    print(summary("request -> console marker", [b.to_marker for b in boots
                                                 if b.to_marker is not None]))

    for b in boots:
        if b.server_id:
            api.call("DELETE", "compute", f"/servers/{b.server_id}")
    deadline = time.monotonic() + 300
    for b in boots:
        while b.server_id and time.monotonic() < deadline:
            if api.call("GET", "compute", f"/servers/{b.server_id}").status_code == 404:
                break
            time.sleep(1)
    return 0 if all(not b.error for b in boots) else 1


if __name__ == "__main__":
    sys.exit(main())
