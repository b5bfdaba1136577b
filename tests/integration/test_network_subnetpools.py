"""Subnet pools on a real stratus-network next to a real stratus-identity (issue 12).

python-openstackclient drives the pool and a subnet allocated from it; 30 concurrent
allocations from one pool get 30 distinct blocks on SQLite and on PostgreSQL (the pool
row serializes them) and the 33rd of a full pool a clear 409; a member of another
project sees the admin's shared default pool but not a private one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from helpers import BIN, IdentityServer, Postgres
from network_api import NetworkServer

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("netpool-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            identity: IdentityServer) -> Iterator[NetworkServer]:
    root = tmp_path_factory.mktemp(f"netpool-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/network.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"netpool_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = NetworkServer(root, url, identity)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]


def client(network: NetworkServer, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=network.url, timeout=60,
                        headers={"X-Auth-Token": token or network.identity.token()})


def member_token(identity: IdentityServer, name: str) -> str:
    """A member of a new project ``name`` (user ``name``), made through the identity API."""
    with httpx.Client(base_url=identity.url, timeout=30,
                      headers={"X-Auth-Token": identity.token()}) as ident:
        found = ident.get("/v3/users", params={"name": name}).json()["users"]
        if not found:
            project = ident.post("/v3/projects", json={"project": {
                "name": name, "domain_id": "default"}}).json()["project"]
            user = ident.post("/v3/users", json={"user": {
                "name": name, "password": "pw-" + name, "domain_id": "default"}}).json()["user"]
            role = ident.get("/v3/roles", params={"name": "member"}).json()["roles"][0]
            done = ident.put(f"/v3/projects/{project['id']}/users/{user['id']}/roles/"
                             f"{role['id']}")
            assert done.status_code in (200, 201, 204), done.text
    return identity.token(name, "pw-" + name, name)


def osc(identity: IdentityServer, *args: str) -> Any:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(identity.clouds_yaml()),
           "OS_CLOUD": "stratus"}
    for key in ("OS_AUTH_URL", "OS_TOKEN", "OS_PASSWORD", "OS_USERNAME"):
        env.pop(key, None)
    wants_json = any(a in ("create", "list", "show") for a in args[:4])
    cmd = [str(BIN / "openstack"), *args, *(["-f", "json"] if wants_json else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if wants_json and proc.stdout.strip() else proc.stdout


@pytest.mark.parametrize("network", ["sqlite"], indirect=True)
def test_openstack_client_subnet_pools(network: NetworkServer) -> None:
    ident = network.identity
    pool = osc(ident, "subnet", "pool", "create", "--pool-prefix", "10.80.0.0/16",
               "--default-prefix-length", "24", "--min-prefix-length", "20", "osc-pool")
    assert pool["prefixes"] == ["10.80.0.0/16"] and pool["default_prefixlen"] == 24
    osc(ident, "network", "create", "osc-pool-net")
    sub = osc(ident, "subnet", "create", "--network", "osc-pool-net", "--subnet-pool",
              "osc-pool", "osc-pool-sub")
    assert sub["cidr"] == "10.80.0.0/24" and sub["subnetpool_id"] == pool["id"]
    sub2 = osc(ident, "subnet", "create", "--network", "osc-pool-net", "--subnet-pool",
               "osc-pool", "--prefix-length", "22", "osc-pool-sub2")
    assert sub2["cidr"] == "10.80.4.0/22"
    osc(ident, "subnet", "pool", "set", "--pool-prefix", "10.81.0.0/16", "--description",
        "grown", "osc-pool")
    shown = osc(ident, "subnet", "pool", "show", "osc-pool")
    assert shown["prefixes"] == ["10.80.0.0/15"] and shown["description"] == "grown"
    assert "osc-pool" in [p["Name"] for p in osc(ident, "subnet", "pool", "list")]
    osc(ident, "subnet", "delete", "osc-pool-sub", "osc-pool-sub2")
    osc(ident, "subnet", "pool", "delete", "osc-pool")


def test_concurrent_allocations_from_one_pool_are_distinct(network: NetworkServer) -> None:
    with client(network) as c:
        resp = c.post("/v2.0/subnetpools", json={"subnetpool": {
            "name": "conc", "prefixes": ["10.90.0.0/22"], "min_prefixlen": 27,
            "default_prefixlen": 27}})
        assert resp.status_code == 201, resp.text
        pool = resp.json()["subnetpool"]
        nets = [c.post("/v2.0/networks", json={"network": {"name": f"pn{i}"}}).json()
                ["network"]["id"] for i in range(3)]

        def create(i: int) -> httpx.Response:
            return c.post("/v2.0/subnets", json={"subnet": {
                "network_id": nets[i % 3], "subnetpool_id": pool["id"], "ip_version": 4,
                "enable_dhcp": False}})

        with ThreadPoolExecutor(max_workers=10) as workers:
            answers = list(workers.map(create, range(30)))
        assert [r.status_code for r in answers] == [201] * 30, {
            r.status_code: r.text for r in answers if r.status_code != 201}
        cidrs = [r.json()["subnet"]["cidr"] for r in answers]
        assert len(set(cidrs)) == 30 and all(c_.endswith("/27") for c_ in cidrs)
        more = [create(i) for i in range(3)]
        assert [r.status_code for r in more[:2]] == [201, 201]
        assert more[2].status_code == 409
        assert "Insufficient prefix space" in more[2].json()["NeutronError"]["message"]
        listed = c.get("/v2.0/subnets", params={"subnetpool_id": pool["id"]}).json()["subnets"]
        assert len(listed) == 32
        assert c.delete(f"/v2.0/subnetpools/{pool['id']}").status_code == 409


def test_projects_see_shared_pools_and_external_subnets(network: NetworkServer) -> None:
    token = member_token(network.identity, "poolmember")
    with client(network) as admin, client(network, token) as member:
        shared = admin.post("/v2.0/subnetpools", json={"subnetpool": {
            "name": "shared-default", "prefixes": ["10.100.0.0/16"], "shared": True,
            "is_default": True, "default_prefixlen": 26}}).json()["subnetpool"]
        private = admin.post("/v2.0/subnetpools", json={"subnetpool": {
            "name": "admin-only", "prefixes": ["10.101.0.0/16"]}}).json()["subnetpool"]
        seen = {p["id"] for p in member.get("/v2.0/subnetpools").json()["subnetpools"]}
        assert shared["id"] in seen and private["id"] not in seen
        assert member.get(f"/v2.0/subnetpools/{private['id']}").status_code == 404
        net = member.post("/v2.0/networks", json={"network": {"name": "m"}}).json()["network"]
        sub = member.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "use_default_subnetpool": True, "ip_version": 4}})
        assert sub.status_code == 201, sub.text
        assert sub.json()["subnet"]["cidr"] == "10.100.0.0/26"
        assert member.put(f"/v2.0/subnetpools/{shared['id']}", json={"subnetpool": {
            "name": "mine"}}).status_code == 403
        # subnet-external-network: the external network's subnets, marked router:external.
        ext = admin.post("/v2.0/networks", json={"network": {
            "name": "pub", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public"}}).json()["network"]
        esub = admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": ext["id"], "cidr": "172.24.8.0/24", "ip_version": 4,
            "enable_dhcp": False}}).json()["subnet"]
        listed = member.get("/v2.0/subnets", params={"network_id": ext["id"]}).json()
        assert [(s["id"], s["router:external"]) for s in listed["subnets"]] == [
            (esub["id"], True)]
        assert member.delete(f"/v2.0/subnets/{esub['id']}").status_code in (403, 404)
        for pool in (shared, private):
            if pool is shared:
                assert admin.delete(f"/v2.0/subnets/{sub.json()['subnet']['id']}"
                                    ).status_code == 204
            assert admin.delete(f"/v2.0/subnetpools/{pool['id']}").status_code == 204
