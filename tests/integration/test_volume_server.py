"""stratus-volume as a real process next to a real stratus-identity, on SQLite and PostgreSQL.

The tests play the storage agent over HTTP (register, long-poll the state, report), so
no pool or tgt is needed here: the life cycle of volumes, snapshots and attachments, the
bad input of issue 10 (each a clear 4xx with nothing changed), a kill -9 of the service
(statuses re-derived at start), and python-openstackclient's volume commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from helpers import BIN, IdentityServer, Postgres
from volume_api import VolumeClient, VolumeServer

pytestmark = [pytest.mark.integration]
HOST = "vtest-stor1"
CONNECTOR = {"initiator": "iqn.2010-10.org.stratus:vtest-cmp1", "host": "vtest-cmp1",
             "ip": "127.0.0.1", "platform": "x86_64", "os_type": "linux", "multipath": False}
SERVER = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    root = tmp_path_factory.mktemp("vol-identity")
    srv = IdentityServer(root, f"sqlite:///{root}/identity.sqlite")
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def volume(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           identity: IdentityServer) -> Iterator[VolumeServer]:
    root = tmp_path_factory.mktemp(f"volume-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root}/volume.sqlite"
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        url = pg.create_database(f"volume_{os.getpid()}_{root.name.replace('-', '_')}")
    srv = VolumeServer(root, url, identity, extra_env={
        "STRATUS_VOLUME__EXPORT_TIMEOUT": "10", "STRATUS_VOLUME__SWEEP_INTERVAL": "1"})
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-3000:]


def member(identity: IdentityServer, name: str) -> tuple[str, str]:
    """A project and a user with the member role on it: (token, project id)."""
    admin = identity.token()
    with httpx.Client(base_url=f"{identity.url}/v3", headers={"X-Auth-Token": admin}) as c:
        found = c.get("/projects", params={"name": name}).json()["projects"]
        project = found[0] if found else c.post("/projects", json={"project": {
            "name": name, "domain_id": "default"}}).json()["project"]
        users = c.get("/users", params={"name": name}).json()["users"]
        user = users[0] if users else c.post("/users", json={"user": {
            "name": name, "password": "pw-" + name, "domain_id": "default"}}).json()["user"]
        role = c.get("/roles", params={"name": "member"}).json()["roles"][0]
        c.put(f"/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")
    return identity.token(name, "pw-" + name, name), project["id"]


def admin_client(srv: VolumeServer) -> VolumeClient:
    tok = srv.identity.token()
    body = httpx.get(f"{srv.identity.url}/v3/auth/tokens",
                     headers={"X-Auth-Token": tok, "X-Subject-Token": tok}).json()
    return VolumeClient(srv.url, tok, body["token"]["project"]["id"])


class Agent:
    """The storage agent, played over HTTP with the admin token."""

    def __init__(self, admin: VolumeClient, host: str = HOST) -> None:
        self.admin, self.host = admin, host

    def register(self) -> None:
        resp = self.admin.call("POST", "/v3/storage/hosts", json={
            "host": self.host, "portal": "127.0.0.1:3260",
            "iqn_prefix": f"iqn.2010-10.org.stratus:st-{self.host}", "capacity_gb": 50,
            "free_gb": 50, "formats": ["raw"]})
        assert resp.status_code == 200, resp.text

    def state(self, since: int | None = None, wait: float = 0) -> dict[str, Any]:
        params = {} if since is None else {"since": since, "wait": wait}
        resp = self.admin.call("GET", f"/v3/storage/hosts/{self.host}/state", params=params)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def converge(self) -> None:
        st = self.state()
        body = {"volumes": [{"id": v["id"], "size_gb": v["size_gb"], "state": "ready"}
                            for v in st["volumes"]],
                "snapshots": [{"id": s["id"], "state": "ready"} for s in st["snapshots"]],
                "exports": [{"attachment_id": e["attachment_id"], "state": "ready"}
                            for e in st["exports"]],
                "uploads": [{**u, "state": "done"} for u in st["uploads"]]}
        resp = self.admin.call("POST", f"/v3/storage/hosts/{self.host}/report", json=body)
        assert resp.status_code == 200, resp.text


class Agents(Agent):
    """Every storage host registered so far (a volume goes to any of them)."""

    def converge(self) -> None:
        hosts = self.admin.call("GET", "/v3/storage/hosts").json()["hosts"]
        for host in hosts:
            Agent(self.admin, host["host"]).converge()

    def state(self, since: int | None = None, wait: float = 0) -> dict[str, Any]:
        hosts = self.admin.call("GET", "/v3/storage/hosts").json()["hosts"]
        merged: dict[str, Any] = {"volumes": [], "snapshots": [], "exports": [], "uploads": []}
        for host in hosts:
            part = Agent(self.admin, host["host"]).state()
            for key in merged:
                merged[key] += part[key]
        return merged


def status(client: VolumeClient, volume_id: str) -> str:
    resp = client.call("GET", f"/volumes/{volume_id}")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["volume"]["status"])


def refused(resp: httpx.Response, code: int, words: str) -> None:
    assert resp.status_code == code, (resp.status_code, resp.text)
    message = next(iter(resp.json().values()))["message"]
    assert words in message, message


def test_life_cycle_and_bad_input(volume: VolumeServer) -> None:
    assert httpx.get(f"{volume.url}/").status_code == 300
    tok_a, proj_a = member(volume.identity, "valice")
    tok_b, proj_b = member(volume.identity, "vbob")
    # The catalog renders the volume endpoint with the token's project.
    body = httpx.get(f"{volume.identity.url}/v3/auth/tokens",
                     headers={"X-Auth-Token": tok_a, "X-Subject-Token": tok_a}).json()
    urls = [e["url"] for s in body["token"]["catalog"] if s["type"] == "block-storage"
            for e in s["endpoints"]]
    assert set(urls) == {f"{volume.url}/v3/{proj_a}"}
    admin = admin_client(volume)
    agent = Agent(admin)
    agent.register()
    alice = VolumeClient(volume.url, tok_a, proj_a)
    bob = VolumeClient(volume.url, tok_b, proj_b)

    # A long-poll of the host state answers when a volume is created for it.
    gen = agent.state()["generation"]
    polled: dict[str, Any] = {}
    poller = threading.Thread(target=lambda: polled.update(agent.state(gen, 20)))
    poller.start()
    vol = alice.call("POST", "/volumes", json={"volume": {"size": 1, "name": "v1"}})
    assert vol.status_code == 202, vol.text
    vid = vol.json()["volume"]["id"]
    poller.join()
    assert vid in [v["id"] for v in polled["volumes"]]
    agent.converge()
    assert status(alice, vid) == "available"

    # Bad sizes, over quota, another project: clear 4xx, nothing made.
    for size in (0, -1, "x", 1.5):
        refused(alice.call("POST", "/volumes", json={"volume": {"size": size}}), 400, "size")
    assert admin.call("PUT", f"/os-quota-sets/{proj_a}",
                      json={"quota_set": {"gigabytes": 4}}).status_code == 200
    refused(alice.call("POST", "/volumes", json={"volume": {"size": 4}}), 413, "gigabytes")
    assert len(alice.call("GET", "/volumes").json()["volumes"]) == 1
    refused(bob.call("GET", f"/volumes/{vid}"), 404, "could not be found")
    refused(bob.call("DELETE", f"/volumes/{vid}"), 404, "could not be found")
    # Shrink.
    refused(alice.call("POST", f"/volumes/{vid}/action",
                       json={"os-extend": {"new_size": 1}}), 400, "greater than current")

    # Attach (the attachments API, as the compute API does it).
    att = alice.call("POST", "/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": SERVER, "mode": "rw"}})
    assert att.status_code == 200, att.text
    att_id = att.json()["attachment"]["id"]
    timer = threading.Timer(0.5, agent.converge)
    timer.start()
    upd = alice.call("PUT", f"/attachments/{att_id}",
                     json={"attachment": {"connector": CONNECTOR}})
    timer.join()
    assert upd.status_code == 200, upd.text
    info = upd.json()["attachment"]["connection_info"]["data"]
    assert info["target_iqn"] == f"iqn.2010-10.org.stratus:st-{HOST}:{att_id}"
    assert alice.call("POST", f"/attachments/{att_id}/action",
                      json={"os-complete": None}).status_code == 204
    assert status(alice, vid) == "in-use"
    # Attach an in-use volume again, delete it attached, snapshot it without force.
    refused(alice.call("POST", "/attachments", json={"attachment": {"volume_uuid": vid}}),
            400, "in-use")
    refused(alice.call("DELETE", f"/volumes/{vid}"), 400, "in-use")
    refused(alice.call("POST", "/snapshots", json={"snapshot": {"volume_id": vid}}),
            400, "force")
    assert alice.call("GET", "/snapshots").json()["snapshots"] == []
    assert status(alice, vid) == "in-use"
    forced = alice.call("POST", "/snapshots", json={"snapshot": {"volume_id": vid,
                                                                 "force": True}})
    assert forced.status_code == 202, forced.text
    agent.converge()
    # Detach; a volume with a snapshot cannot be deleted.
    assert alice.call("DELETE", f"/attachments/{att_id}").status_code == 200
    assert status(alice, vid) == "available"
    assert agent.state()["exports"] == []
    refused(alice.call("DELETE", f"/volumes/{vid}"), 400, "snapshot")
    sid = forced.json()["snapshot"]["id"]
    assert alice.call("DELETE", f"/snapshots/{sid}").status_code == 202
    agent.converge()
    assert alice.call("DELETE", f"/volumes/{vid}").status_code == 202
    agent.converge()
    assert alice.call("GET", f"/volumes/{vid}").status_code == 404
    for c in (admin, alice, bob):
        c.close()


def test_concurrent_creates_never_pass_the_quota(volume: VolumeServer) -> None:
    tok, proj = member(volume.identity, "vcarol")
    admin = admin_client(volume)
    assert admin.call("PUT", f"/os-quota-sets/{proj}",
                      json={"quota_set": {"volumes": 6}}).status_code == 200
    Agent(admin, "vtest-stor4").register()

    def create(_: int) -> int:
        with httpx.Client(base_url=volume.url, timeout=60, headers={
                "X-Auth-Token": tok, "OpenStack-API-Version": "volume 3.60"}) as c:
            return c.post(f"/v3/{proj}/volumes", json={"volume": {"size": 1}}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(create, range(16)))
    assert codes == [202] * 6 + [413] * 10, codes
    carol = VolumeClient(volume.url, tok, proj)
    vols = carol.call("GET", "/volumes").json()["volumes"]
    assert len(vols) == 6
    # Concurrent attachments of one volume: exactly one is made.
    Agents(admin).converge()

    def reserve(_: int) -> int:
        with httpx.Client(base_url=volume.url, timeout=60, headers={
                "X-Auth-Token": tok, "OpenStack-API-Version": "volume 3.60"}) as c:
            return c.post(f"/v3/{proj}/attachments", json={"attachment": {
                "volume_uuid": vols[0]["id"], "instance_uuid": SERVER}}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(reserve, range(8)))
    assert codes == [200] + [400] * 7, codes
    carol.close()
    admin.close()


def wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


@pytest.mark.parametrize("volume", ["sqlite"], indirect=True)
def test_kill_9_leaves_nothing_transitional(volume: VolumeServer) -> None:
    admin = admin_client(volume)
    agent = Agents(admin, "vtest-stor2")
    agent.register()
    made = admin.call("POST", "/volumes", json={"volume": {"size": 1}}).json()["volume"]
    other = admin.call("POST", "/volumes", json={"volume": {"size": 1}}).json()["volume"]
    agent.converge()
    att = admin.call("POST", "/attachments", json={"attachment": {
        "volume_uuid": other["id"], "instance_uuid": SERVER}}).json()["attachment"]
    # An attachment update waits for the agent; the service dies meanwhile (kill -9), and
    # a volume being created is left to the agent.
    creating = admin.call("POST", "/volumes", json={"volume": {"size": 1}}).json()["volume"]
    def update() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the service dies under it
            admin.call("PUT", f"/attachments/{att['id']}",
                       json={"attachment": {"connector": CONNECTOR}})

    waiting = threading.Thread(target=update)
    waiting.start()
    wait_for(lambda: status(admin, other["id"]) == "attaching")
    assert volume.proc is not None
    os.kill(volume.proc.pid, signal.SIGKILL)
    volume.proc.wait()
    waiting.join()
    volume.extra_env["STRATUS_VOLUME__STALE_ATTACHMENT_SECONDS"] = "1"
    volume.start()
    # Nothing is stuck: the create finishes when the agent reports, the attachment nobody
    # completes goes away and its volume is available again.
    agent.converge()
    assert status(admin, creating["id"]) == "available"
    assert status(admin, made["id"]) == "available"
    wait_for(lambda: status(admin, other["id"]) == "available")
    assert admin.call("GET", f"/attachments/{att['id']}").status_code == 404
    assert agent.state()["exports"] == []
    admin.close()


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


@pytest.mark.parametrize("volume", ["sqlite"], indirect=True)
def test_python_openstackclient(volume: VolumeServer) -> None:
    ident = volume.identity
    admin = admin_client(volume)
    agent = Agents(admin, "vtest-stor3")
    agent.register()
    made = osc(ident, "volume", "create", "--size", "1", "--property", "k=v", "osc-vol")
    assert made["size"] == 1 and made["name"] == "osc-vol"
    agent.converge()
    shown = osc(ident, "volume", "show", "osc-vol")
    assert shown["status"] == "available" and str(shown["bootable"]).lower() == "false"
    assert "osc-vol" in [v["Name"] for v in osc(ident, "volume", "list")]
    osc(ident, "volume", "set", "--name", "osc-vol2", "--description", "d", "--bootable",
        "osc-vol")
    shown = osc(ident, "volume", "show", "osc-vol2")
    assert shown["description"] == "d" and str(shown["bootable"]).lower() == "true"
    osc(ident, "volume", "set", "--size", "2", "osc-vol2")
    agent.converge()
    assert osc(ident, "volume", "show", "osc-vol2")["size"] == 2
    snap = osc(ident, "volume", "snapshot", "create", "--volume", "osc-vol2", "osc-snap")
    assert snap["status"] == "creating"
    agent.converge()
    assert osc(ident, "volume", "snapshot", "show", "osc-snap")["status"] == "available"
    osc(ident, "volume", "snapshot", "delete", "osc-snap")
    agent.converge()
    osc(ident, "volume", "delete", "osc-vol2")
    agent.converge()
    assert "osc-vol2" not in [v["Name"] for v in osc(ident, "volume", "list")]
    admin.close()
