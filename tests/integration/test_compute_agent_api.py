"""The compute agent's loop against the real stratus-compute (and identity, image,
network) servers: the contract of docs/compute.md end to end, with the fake driver
(no guest boots) but the real image download, checksums, config drive rendering,
reports, heartbeats and snapshot upload. python-openstackclient drives the server.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_compute_server import osc, wait_status

from helpers import ComputeServer, IdentityServer
from stack import compute_stack
from stratus.agent.compute.apis import HttpComputeApi, HttpImageApi
from stratus.agent.compute.reconcile import ComputeAgent
from stratus.agent.compute.state import AgentSettings
from stratus.agent.compute.virt.base import RUNNING, SHUTDOWN
from stratus.agent.compute.virt.fake import FakeDriver
from stratus.common.clients import StaticToken
from stratus.contracts.network import tap_name

pytestmark = [pytest.mark.integration]
HOST = "scag-cmp1"


class SnapshotDriver(FakeDriver):
    """The fake driver, but its snapshot is a real qcow2 the image API accepts."""

    def snapshot(self, server_id: str, dest: str) -> None:
        self._call("snapshot", server_id)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", dest, "16M"], check=True)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("scag-api")
    with compute_stack(root) as st:
        yield {"identity": st.identity, "image": st.image, "network": st.network,
               "compute": st.compute, "root": root}


def test_agent_loop_with_the_real_compute_api(cloud: dict[str, Any]) -> None:
    ident: IdentityServer = cloud["identity"]
    compute: ComputeServer = cloud["compute"]
    root = Path(cloud["root"])
    token = ident.token()
    headers = {"X-Auth-Token": token}
    disk = root / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    img = httpx.post(f"{cloud['image'].url}/v2/images", headers=headers, json={
        "name": "tiny", "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}).json()
    up = httpx.put(f"{cloud['image'].url}/v2/images/{img['id']}/file", content=disk.read_bytes(),
                   headers={**headers, "Content-Type": "application/octet-stream"})
    assert up.status_code == 204, up.text
    net = osc(ident, "network", "create", "scag-net")
    osc(ident, "subnet", "create", "--network", "scag-net", "--subnet-range",
        "192.168.78.0/24", "scag-sub")
    osc(ident, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--id", "1",
        "m1.tiny")

    auth = StaticToken(token)
    driver = SnapshotDriver(prefix="scag-")
    settings = AgentSettings(host=HOST, instances_path=str(root / "instances"),
                             resync_interval=1, heartbeat_interval=1, retry_interval=1,
                             vif_plug_wait=False, console_interval=1, shutdown_timeout=0)
    agent = ComputeAgent(settings, driver, HttpComputeApi(f"{compute.url}/v2.1", HOST, auth),
                         HttpImageApi(cloud["image"].url, auth))
    assert agent.heartbeat()
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    loop.start()
    try:
        srv = osc(ident, "server", "create", "--image", img["id"], "--flavor", "m1.tiny",
                  "--network", net["id"], "--config-drive", "True", "--wait", "scag-vm1")
        sid = srv["id"]
        assert srv["status"] == "ACTIVE" and srv["OS-EXT-SRV-ATTR:host"] == HOST
        assert driver.domains[sid].state == RUNNING
        # the real image was downloaded and verified against the image API's checksums
        base = Path(driver.domains[sid].spec.image_path)
        assert base.read_bytes() == disk.read_bytes()
        meta = json.loads(driver.config_drives[sid]["openstack/latest/meta_data.json"])
        assert meta["uuid"] == sid and meta["hostname"]
        port = srv_port = driver.domains[sid].spec.ports[0]
        assert srv_port.device == tap_name(settings.deploy_prefix, port.id)  # st-tp…
        deadline = time.monotonic() + 30
        while "booted" not in osc(ident, "console", "log", "show", "scag-vm1", json_out=False):
            assert time.monotonic() < deadline
            time.sleep(0.5)

        osc(ident, "server", "stop", "scag-vm1", json_out=False)
        wait_status(ident, "scag-vm1", "SHUTOFF")
        assert driver.domains[sid].state == SHUTDOWN
        osc(ident, "server", "start", "scag-vm1", json_out=False)
        wait_status(ident, "scag-vm1", "ACTIVE")
        assert driver.domains[sid].state == RUNNING
        osc(ident, "server", "reboot", "--hard", "--wait", "scag-vm1", json_out=False)
        wait_status(ident, "scag-vm1", "ACTIVE")
        assert ("reboot_hard", sid) in driver.calls

        snap = osc(ident, "server", "image", "create", "--name", "scag-snap", "--wait",
                   "scag-vm1")
        shown = httpx.get(f"{cloud['image'].url}/v2/images/{snap['id']}",
                          headers=headers).json()
        assert shown["status"] == "active" and shown["disk_format"] == "qcow2", shown
        assert ("snapshot", sid) in driver.calls

        osc(ident, "server", "delete", "--wait", "scag-vm1", json_out=False)
        assert osc(ident, "server", "list") == []
        deadline = time.monotonic() + 10
        while driver.domains or driver.dirs or driver.taps:
            assert time.monotonic() < deadline, (driver.domains, driver.dirs, driver.taps)
            time.sleep(0.2)
        assert agent.store.ids() == set()
    finally:
        stop.set()
        loop.join(timeout=60)
    assert not loop.is_alive()
