"""stratus-compute as a real process next to real identity and volume servers: Nova's
os-volumes / os-snapshots proxies find the volume API in the catalog (no volume_url) and
call it with each caller's own token, so one project never sees another's volumes.
No storage agent runs: volumes stay ``creating``, which is all the proxy needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers import ComputeServer, IdentityServer
from volume_api import VolumeServer

pytestmark = [pytest.mark.integration]
V21 = {"OpenStack-API-Version": "compute 2.1"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("s9t-volproxy")
    started: list[Any] = []

    def up(server: Any) -> Any:
        server.prepare()
        server.start()
        started.append(server)
        return server

    try:
        identity = up(IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite"))
        volume = up(VolumeServer(root / "volume", f"sqlite:///{root}/volume.sqlite",
                                 identity))
        compute = up(ComputeServer(root / "compute", identity, "http://127.0.0.1:9",
                                   "http://127.0.0.1:9"))
        yield {"identity": identity, "volume": volume, "compute": compute}
        assert "Traceback" not in compute.log(), compute.log()[-3000:]
    finally:
        for server in reversed(started):
            server.stop()


def project_of(identity_url: str, token: str) -> str:
    """The project a token is scoped to (the volume API's paths name it)."""
    resp = httpx.get(f"{identity_url}/v3/auth/tokens", timeout=30,
                     headers={"X-Auth-Token": token, "X-Subject-Token": token})
    return str(resp.json()["token"]["project"]["id"])


def test_volume_proxy_over_the_real_volume_api(cloud: dict[str, Any]) -> None:
    url = f"{cloud['compute'].url}/v2.1"
    alice = {**V21, "X-Auth-Token": cloud["identity"].member_token("s9t-alice")}
    bob = {**V21, "X-Auth-Token": cloud["identity"].member_token("s9t-bob")}
    with httpx.Client(base_url=url, timeout=60) as c:
        made = c.post("/os-volumes", headers=alice, json={"volume": {
            "size": 1, "display_name": "s9t-vol", "metadata": {"Type": "work"}}})
        assert made.status_code == 200, made.text
        vol = made.json()["volume"]
        assert vol["displayName"] == "s9t-vol" and vol["attachments"] == [{}]
        # the volume API really has it, in Alice's project, made with her token
        project = project_of(cloud["identity"].url, alice["X-Auth-Token"])
        real = httpx.get(f"{cloud['volume'].url}/v3/{project}/volumes/{vol['id']}",
                         headers={"X-Auth-Token": alice["X-Auth-Token"]}, timeout=30)
        assert real.status_code == 200, real.text
        shown = c.get(f"/os-volumes/{vol['id']}", headers=alice).json()["volume"]
        assert shown["metadata"] == {"Type": "work"} and shown["size"] == 1
        assert [v["id"] for v in c.get("/os-volumes/detail", headers=alice).json()[
            "volumes"]] == [vol["id"]]
        # Bob's calls carry Bob's token: Alice's volume is not his
        assert c.get(f"/os-volumes/{vol['id']}", headers=bob).status_code == 404
        assert c.get("/os-volumes", headers=bob).json() == {"volumes": []}
        assert c.delete(f"/os-volumes/{vol['id']}", headers=bob).status_code == 404
        assert c.post("/os-volumes", headers=alice, json={"volume": {"size": 0}}
                      ).status_code == 400
        snap = c.post("/os-snapshots", headers=bob, json={"snapshot": {
            "volume_id": vol["id"]}})
        assert snap.status_code == 404, snap.text
        gone = c.get("/os-volumes", headers={**alice, "OpenStack-API-Version":
                                            "compute 2.36"})
        assert gone.status_code == 404
