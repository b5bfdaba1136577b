"""Fault injection: the compute and network APIs, real processes next to a real
identity and image API, kill themselves with SIGKILL at the named crash points of
``[debug] crash_at`` (docs/crash-recovery.md) in the middle of a server create, a port
create and a router interface add. After a restart without the crash point every server
ends ACTIVE or ERROR with a fault, and no port, IP, router interface, host claim or
quota reservation is left without its owner (read from both databases).

The compute agent is played by a thread over the agent endpoints (as in
test_compute_server.py): it spawns what it is assigned by reporting it active.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ComputeServer
from network_api import NetworkServer
from stack import ComputeStack, compute_stack

pytestmark = [pytest.mark.integration]
HOST = "tcr-cmp1"
WAIT = 60.0  # seconds a server may take to settle after the restart (a bound, not a figure)
COMPUTE_POINTS = ["compute.create.after_row", "compute.create.after_schedule",
                  "compute.create.after_port", "compute.create.after_bind",
                  "compute.create.after_record"]


class Agent(threading.Thread):
    """Plays the compute agent of HOST; rides out the compute API's restarts."""

    def __init__(self, compute_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=f"{compute_url}/v2.1/stratus",
                                 headers={"X-Auth-Token": token}, timeout=10)
        self.halt = threading.Event()

    def heartbeat(self) -> None:
        resp = self.http.put(f"/compute-hosts/{HOST}", json={"host": {
            "vcpus": 8, "memory_mb": 8192, "local_gb": 50, "virt_type": "qemu",
            "hypervisor_hostname": HOST, "host_ip": "127.0.0.1"}})
        resp.raise_for_status()

    def run(self) -> None:
        params: dict[str, Any] = {}
        while not self.halt.is_set():
            try:
                self.heartbeat()
                body = self.http.get(f"/compute-hosts/{HOST}/servers", params=params).json()
                params = {"wait": 1, "since": body["generation"]}
                for a in body["servers"]:
                    path = f"/compute-hosts/{HOST}/servers/{a['id']}/report"
                    if a["delete"]:
                        self.http.post(path, json={"deleted": True})
                    elif a["task_state"] == "spawning":
                        assert a["ports"], a
                        self.http.post(path, json={"vm_state": "active", "power_state": 1})
                    elif a["snapshots"]:  # "uploaded" (the image stays queued here)
                        self.http.post(path, json={"snapshots_done": [
                            x["image_id"] for x in a["snapshots"]]})
            except httpx.HTTPError:
                params = {}
                time.sleep(0.3)  # the compute API is being killed or restarted


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("tcr")
    with compute_stack(root) as st:
        token = st.identity.token()
        headers = {"X-Auth-Token": token}
        net = httpx.post(f"{st.network.url}/v2.0/networks", headers=headers,
                         json={"network": {"name": "tcr-net"}}).json()["network"]
        sub = httpx.post(f"{st.network.url}/v2.0/subnets", headers=headers, json={"subnet": {
            "network_id": net["id"], "cidr": "10.251.0.0/24", "ip_version": 4}}
        ).json()["subnet"]
        disk = root / "tcr-tiny.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"],
                       check=True)
        img = httpx.post(f"{st.image.url}/v2/images", headers=headers, json={
            "name": "tcr-tiny", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "public"}).json()
        httpx.put(f"{st.image.url}/v2/images/{img['id']}/file", content=disk.read_bytes(),
                  headers={**headers, "Content-Type": "application/octet-stream"}
                  ).raise_for_status()
        restart(st.compute, None)  # recovery every second from here on
        compute = httpx.Client(base_url=f"{st.compute.url}/v2.1", timeout=30, headers={
            **headers, "OpenStack-API-Version": "compute 2.47"})
        compute.post("/flavors", json={"flavor": {"name": "tcr", "id": "tcr", "vcpus": 1,
                                                  "ram": 256, "disk": 1}}).raise_for_status()
        agent = Agent(st.compute.url, token)
        agent.heartbeat()
        agent.start()
        try:
            yield {"stack": st, "headers": headers, "net": net, "subnet": sub,
                   "image": img["id"], "compute": compute, "root": root}
        finally:
            agent.halt.set()
            agent.join(timeout=15)


def restart(server: ComputeServer | NetworkServer, point: str | None) -> None:
    """Stop the service (SIGTERM; nothing if it is already dead) and start it again,
    armed at ``point`` (None: unarmed; the compute API then recovers every second)."""
    server.stop()
    server.extra_env.pop("STRATUS_DEBUG__CRASH_AT", None)
    if point:
        server.extra_env["STRATUS_DEBUG__CRASH_AT"] = point
    if isinstance(server, ComputeServer):
        server.extra_env["STRATUS_COMPUTE__RECOVERY_INTERVAL"] = "1"
    server.start()


def killed(server: ComputeServer | NetworkServer) -> int:
    """Wait for the armed process to have killed itself; its exit status."""
    assert server.proc is not None
    return server.proc.wait(timeout=30)


def boot(cloud: dict[str, Any], name: str) -> httpx.Response | None:
    """POST /servers; None when the compute API died before answering."""
    try:
        return cloud["compute"].post("/servers", json={"server": {
            "name": name, "imageRef": cloud["image"], "flavorRef": "tcr",
            "networks": [{"uuid": cloud["net"]["id"]}]}})
    except httpx.TransportError:
        return None


def settle(cloud: dict[str, Any], name: str) -> dict[str, Any]:
    """The server named ``name`` once it is ACTIVE or ERROR (at most WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = cloud["compute"].get("/servers/detail", params={"name": f"^{name}$"}
                                     ).json()["servers"]
        assert len(found) == 1, found
        srv: dict[str, Any] = found[0]
        if srv["status"] in ("ACTIVE", "ERROR"):
            return srv
        assert time.monotonic() < deadline, srv
        time.sleep(0.3)


def ports_of(cloud: dict[str, Any], device_id: str) -> list[dict[str, Any]]:
    st: ComputeStack = cloud["stack"]
    return list(httpx.get(f"{st.network.url}/v2.0/ports", headers=cloud["headers"],
                          params={"device_id": device_id}).json()["ports"])


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def check_owners(cloud: dict[str, Any]) -> None:
    """Nothing without its owner, read from both databases."""
    root: Path = cloud["root"]
    cdb, ndb = root / "compute" / "compute.sqlite", root / "network.sqlite"
    live = {sid for (sid,) in rows(cdb, "SELECT id FROM server WHERE deleted = 0")}
    assert rows(cdb, "SELECT id, task_state FROM server WHERE deleted = 0 AND task_state "
                     "IN ('scheduling', 'networking', 'deleting')") == []
    recorded = {(sid, pid) for sid, pid in rows(cdb, "SELECT server_id, port_id FROM "
                                                     "server_port")}
    # Every compute port belongs to a live server that records it, and back.
    compute_ports = {(dev, pid) for pid, dev in rows(
        ndb, "SELECT id, device_id FROM port WHERE device_owner LIKE 'compute:%'")}
    assert compute_ports == {(s, p) for s, p in recorded if s in live}
    assert {s for s, _ in recorded} <= live
    # Every IP has its port; every router port its router.
    assert rows(ndb, "SELECT ip_address FROM ipallocation WHERE port_id NOT IN "
                     "(SELECT id FROM port)") == []
    assert rows(ndb, "SELECT id FROM port WHERE device_owner LIKE 'network:router%' AND "
                     "device_id NOT IN (SELECT id FROM router)") == []
    # The host claim and the quota count exactly the live servers.
    placed = rows(cdb, f"SELECT count(*) FROM server WHERE deleted = 0 AND host = '{HOST}'")
    assert rows(cdb, f"SELECT claimed_instances FROM compute_host WHERE host = '{HOST}'"
                ) == placed
    by_project = dict(rows(cdb, "SELECT project_id, count(*) FROM server WHERE deleted = 0 "
                                "GROUP BY project_id"))
    usage = {p: n for p, n in rows(cdb, "SELECT project_id, instances FROM project_usage")
             if n}
    assert usage == by_project


def test_compute_api_killed_inside_server_create(cloud: dict[str, Any]) -> None:
    st: ComputeStack = cloud["stack"]
    outcomes: dict[str, str] = {}
    for point in COMPUTE_POINTS:
        name = f"tcr-{point.rsplit('.', 1)[1]}"
        restart(st.compute, point)
        assert boot(cloud, name) is None, f"{point}: the compute API answered"
        assert killed(st.compute) == -9
        restart(st.compute, None)
        srv = settle(cloud, name)
        if srv["status"] == "ERROR":
            assert srv["fault"]["message"], srv
        ports = ports_of(cloud, srv["id"])
        assert len(ports) == (1 if srv["status"] == "ACTIVE" else 0), ports
        outcomes[point] = srv["status"]
        check_owners(cloud)
    # createImage killed after the image API made the image: recorded, then uploaded.
    sid = srv["id"]
    restart(st.compute, "compute.snapshot.after_image")
    with pytest.raises(httpx.TransportError):
        cloud["compute"].post(f"/servers/{sid}/action", json={"createImage": {"name": "tcr"}})
    assert killed(st.compute) == -9
    restart(st.compute, None)
    deadline = time.monotonic() + WAIT
    while cloud["compute"].get(f"/servers/{sid}").json()["server"][
            "OS-EXT-STS:task_state"] is not None:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    images = httpx.get(f"{st.image.url}/v2/images", headers=cloud["headers"],
                       params={"instance_uuid": sid}).json()["images"]
    assert [i["name"] for i in images] == ["tcr"]
    assert f"server {sid}: taking over its image_snapshot step" in st.compute.log()
    outcomes["compute.snapshot.after_image"] = "snapshot recorded and uploaded"
    print("\ncompute crash point -> server:", outcomes)
    # Nothing here needs failing: each step is resumed.
    assert set(outcomes.values()) == {"ACTIVE", "snapshot recorded and uploaded"}, outcomes
    for srv in cloud["compute"].get("/servers").json()["servers"]:
        assert cloud["compute"].delete(f"/servers/{srv['id']}").status_code == 204
    deadline = time.monotonic() + WAIT
    while cloud["compute"].get("/servers").json()["servers"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    check_owners(cloud)


def test_compute_api_killed_inside_a_delete_it_finishes_itself(cloud: dict[str, Any]) -> None:
    """A delete the API finishes itself (the host is forced down) killed after the ports
    were dropped: the restarted API finishes it (claim, quota, row)."""
    st: ComputeStack = cloud["stack"]
    compute = cloud["compute"]
    resp = boot(cloud, "tcr-delete")
    assert resp is not None and resp.status_code == 202, resp
    srv = settle(cloud, "tcr-delete")
    assert srv["status"] == "ACTIVE" and len(ports_of(cloud, srv["id"])) == 1
    force = {"host": HOST, "binary": "nova-compute", "forced_down": True}
    assert compute.put("/os-services/force-down", json=force).status_code == 200
    try:
        restart(st.compute, "compute.delete.after_ports")
        with pytest.raises(httpx.TransportError):
            compute.delete(f"/servers/{srv['id']}")
        assert killed(st.compute) == -9
        restart(st.compute, None)
        deadline = time.monotonic() + WAIT
        while compute.get(f"/servers/{srv['id']}").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        # Finished by the restarted API: its recovery pass took the step over, or the
        # agent's next report (the agents re-poll the new process at once) completed it.
        log = st.compute.log()
        assert (f"server {srv['id']}: taking over its deleting step" in log
                or f"/servers/{srv['id']}/report\" 200" in log), "the delete was not finished"
    finally:
        force["forced_down"] = False
        assert compute.put("/os-services/force-down", json=force).status_code == 200
    assert ports_of(cloud, srv["id"]) == []
    check_owners(cloud)
    print("\ncompute.delete.after_ports -> deleted by the restarted API")


def test_compute_api_killed_from_outside_while_creates_are_in_flight(
        cloud: dict[str, Any]) -> None:
    """The issue's report: three concurrent creates, kill -9 of the compute API while
    they run (wherever they are), a restart: every server settles, nothing is left."""
    st: ComputeStack = cloud["stack"]
    outcomes: list[str] = []
    for rnd in range(2):
        names = [f"tcr-burst{rnd}-{i}" for i in range(3)]
        with ThreadPoolExecutor(3) as pool:
            sent = [pool.submit(boot, cloud, name) for name in names]
            time.sleep(0.1 + 0.05 * rnd)
            assert st.compute.proc is not None
            st.compute.proc.kill()
            for f in sent:
                f.result()
        killed(st.compute)
        restart(st.compute, None)
        for name in names:
            found = cloud["compute"].get("/servers", params={"name": f"^{name}$"}
                                         ).json()["servers"]
            if found:  # its row was committed before the kill
                srv = settle(cloud, name)
                assert srv["status"] == "ACTIVE" or srv["fault"]["message"], srv
                outcomes.append(srv["status"])
            else:
                outcomes.append("never recorded")
        check_owners(cloud)
    print("\nkill -9 during 3 concurrent creates, 2 rounds:", outcomes)
    for srv in cloud["compute"].get("/servers").json()["servers"]:
        assert cloud["compute"].delete(f"/servers/{srv['id']}").status_code == 204
    deadline = time.monotonic() + WAIT
    while cloud["compute"].get("/servers").json()["servers"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    check_owners(cloud)


def test_network_api_killed_inside_port_create(cloud: dict[str, Any]) -> None:
    st: ComputeStack = cloud["stack"]
    outcomes: dict[str, str] = {}
    for point in ("network.port_create.after_ips", "network.port_create.after_commit"):
        name = f"tcr-net-{point.rsplit('.', 1)[1]}"
        restart(st.network, point)
        resp = boot(cloud, name)
        assert resp is not None and resp.status_code == 202, resp
        assert killed(st.network) == -9
        restart(st.network, None)
        srv = settle(cloud, name)
        # The compute API got no answer: the build failed with a fault saying why, and a
        # port made anyway is dropped by the compute API's next pass.
        assert srv["status"] == "ERROR" and "ports could not be made" in srv["fault"][
            "message"], srv
        deadline = time.monotonic() + WAIT
        while ports_of(cloud, srv["id"]):
            assert time.monotonic() < deadline, ports_of(cloud, srv["id"])
            time.sleep(0.3)
        if point.endswith("after_commit"):  # that port was made, and dropped by the sweep
            assert f"of the server {srv['id']} is not recorded: dropping it" in \
                st.compute.log()
        outcomes[point] = f"{srv['status']}: {srv['fault']['message'][:60]}"
        check_owners(cloud)
        assert cloud["compute"].delete(f"/servers/{srv['id']}").status_code == 204
    print("\nnetwork port crash point -> server:", outcomes)
    check_owners(cloud)


def test_network_api_killed_inside_router_interface_add(cloud: dict[str, Any]) -> None:
    st: ComputeStack = cloud["stack"]
    url, headers = st.network.url, cloud["headers"]
    router = httpx.post(f"{url}/v2.0/routers", headers=headers,
                        json={"router": {"name": "tcr-router"}}).json()["router"]
    add = f"{url}/v2.0/routers/{router['id']}/add_router_interface"
    sub = cloud["subnet"]
    outcomes: dict[str, str] = {}
    for point in ("network.router_interface.after_port", "network.router_interface.after_commit"):
        restart(st.network, point)
        with pytest.raises(httpx.TransportError):
            httpx.put(add, headers=headers, json={"subnet_id": sub["id"]})
        assert killed(st.network) == -9
        restart(st.network, None)
        interfaces = [p for p in httpx.get(f"{url}/v2.0/ports", headers=headers, params={
            "device_id": router["id"]}).json()["ports"]]
        again = httpx.put(add, headers=headers, json={"subnet_id": sub["id"]})
        if interfaces:  # committed before the kill: whole, owned by the router
            (port,) = interfaces
            assert port["device_owner"] == "network:router_interface"
            assert port["fixed_ips"] == [{"subnet_id": sub["id"],
                                          "ip_address": sub["gateway_ip"]}]
            assert again.status_code == 400 and "already has a port" in again.text
            outcomes[point] = "interface there, whole"
        else:  # not committed: nothing at all, the gateway IP free again
            assert again.status_code == 200, again.text
            outcomes[point] = "nothing left; added again"
        check_owners(cloud)
        removed = httpx.put(f"{url}/v2.0/routers/{router['id']}/remove_router_interface",
                            headers=headers, json={"subnet_id": sub["id"]})
        assert removed.status_code == 200, removed.text
        check_owners(cloud)
    print("\nrouter interface crash point ->", outcomes)
    assert outcomes == {"network.router_interface.after_port": "nothing left; added again",
                        "network.router_interface.after_commit": "interface there, whole"}
    assert httpx.delete(f"{url}/v2.0/routers/{router['id']}", headers=headers
                        ).status_code == 204
