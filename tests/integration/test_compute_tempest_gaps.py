"""stratus-compute as a real process next to real identity, image and network servers,
for what Tempest found missing (issue 12): Nova's security-group proxy over the real
network API with each caller's own identity, and the version documents' links with the
public URL configured as the deploy does (``.../v2.1``), every one of them resolving.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers import ComputeServer, IdentityServer, ImageServer
from network_api import NetworkServer

pytestmark = [pytest.mark.integration]
V21 = {"OpenStack-API-Version": "compute 2.1"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sctg")
    started: list[Any] = []

    def up(server: Any) -> Any:
        server.prepare()
        server.start()
        started.append(server)
        return server

    try:
        identity = up(IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite"))
        image = up(ImageServer(root / "image", identity))
        network = up(NetworkServer(root / "network", f"sqlite:///{root}/network.sqlite",
                                   identity))
        compute = ComputeServer(root / "compute", identity, image.url, network.url)
        compute.extra_env = {"STRATUS_COMPUTE__PUBLIC_URL": f"{compute.url}/v2.1"}
        up(compute)
        yield {"identity": identity, "network": network, "compute": compute}
        assert "Traceback" not in compute.log(), compute.log()[-3000:]
    finally:
        for server in reversed(started):
            server.stop()


def test_version_links_resolve_with_the_deployed_public_url(cloud: dict[str, Any]) -> None:
    compute = cloud["compute"]
    versions = httpx.get(f"{compute.url}/", timeout=30).json()["versions"]
    assert {v["id"] for v in versions} == {"v2.0", "v2.1"}
    for doc in versions:
        href = next(x["href"] for x in doc["links"] if x["rel"] == "self")
        assert href.startswith(f"{compute.url}/v2") and "/v2.1/v2" not in href
        resp = httpx.get(href, timeout=30)
        assert resp.status_code == 200, (href, resp.text)
        assert resp.json()["version"]["id"] == doc["id"]


def test_security_group_proxy_uses_each_callers_identity(cloud: dict[str, Any]) -> None:
    url = f"{cloud['compute'].url}/v2.1"
    alice = {**V21, "X-Auth-Token": cloud["identity"].member_token("sctg-alice")}
    bob = {**V21, "X-Auth-Token": cloud["identity"].member_token("sctg-bob")}
    with httpx.Client(base_url=url, timeout=60) as c:
        made = c.post("/os-security-groups", headers=alice, json={"security_group": {
            "name": "sctg-web", "description": "web"}})
        assert made.status_code == 200, made.text
        group = made.json()["security_group"]
        gid = group["id"]
        assert group["rules"] == [] and group["name"] == "sctg-web"
        # The network API really has it, in Alice's project.
        net = httpx.get(f"{cloud['network'].url}/v2.0/security-groups/{gid}",
                        headers={"X-Auth-Token": alice["X-Auth-Token"]}, timeout=30)
        assert net.status_code == 200
        assert net.json()["security_group"]["project_id"] == group["tenant_id"]
        rule = c.post("/os-security-group-rules", headers=alice, json={
            "security_group_rule": {"parent_group_id": gid, "ip_protocol": "tcp",
                                    "from_port": 22, "to_port": 22,
                                    "cidr": "10.0.0.0/8"}})
        assert rule.status_code == 200, rule.text
        shown = rule.json()["security_group_rule"]
        assert shown["ip_range"] == {"cidr": "10.0.0.0/8"} and shown["from_port"] == 22
        again = c.post("/os-security-group-rules", headers=alice, json={
            "security_group_rule": {"parent_group_id": gid, "ip_protocol": "tcp",
                                    "from_port": 22, "to_port": 22,
                                    "cidr": "10.0.0.0/8"}})
        assert again.status_code == 400, again.text
        icmp = c.post("/os-security-group-rules", headers=alice, json={
            "security_group_rule": {"parent_group_id": gid, "ip_protocol": "icmp",
                                    "from_port": -1, "to_port": -1, "group_id": gid}})
        assert icmp.status_code == 200, icmp.text
        got = c.get(f"/os-security-groups/{gid}", headers=alice).json()["security_group"]
        assert {r["ip_protocol"] for r in got["rules"]} == {"tcp", "icmp"}
        names = {g["name"] for g in c.get("/os-security-groups",
                                          headers=alice).json()["security_groups"]}
        assert "sctg-web" in names
        # Bob's calls carry Bob's token: Alice's group is not his to see or delete.
        assert c.get(f"/os-security-groups/{gid}", headers=bob).status_code == 404
        assert "sctg-web" not in {g["name"] for g in c.get(
            "/os-security-groups", headers=bob).json()["security_groups"]}
        assert c.delete(f"/os-security-groups/{gid}", headers=bob).status_code == 404
        default = next(g for g in c.get("/os-security-groups", headers=alice).json()[
            "security_groups"] if g["name"] == "default")
        assert c.delete(f"/os-security-groups/{default['id']}",
                        headers=alice).status_code == 400
        upd = c.put(f"/os-security-groups/{gid}", headers=alice, json={"security_group": {
            "name": "sctg-web2", "description": "renamed"}})
        assert upd.status_code == 200 and upd.json()["security_group"]["name"] == "sctg-web2"
        assert c.delete(f"/os-security-group-rules/{shown['id']}",
                        headers=alice).status_code == 202
        assert c.delete(f"/os-security-groups/{gid}", headers=alice).status_code == 202
        assert c.get(f"/os-security-groups/{gid}", headers=alice).status_code == 404
