"""Issue 17: the boot path has no stall. A port's tap appears after the network agent's
pass looked for it; the agent plugs and filters it and the network API has the port
ACTIVE at once, and the compute agent's wait (its real client,
``HttpNetworkApi.wait_active``, a long-poll) returns then.

The agent runs as the real ``stratus-network-agent`` process (linuxbridge, inside the
fake host namespace ``tbp-h1``) against a real ``stratus-network`` and
``stratus-identity``, with ``resync_interval`` and ``retry_interval`` at 300 s: no
periodic or retry pass can run during the test, so the port can only become ACTIVE
within the test's 120 s wait if the agent was woken by the tap's appearance (netlink,
``agent/network/devwatch.py``). Before the fix it waited for the next pass (5 s in a
deploy, 300 s here). The fake VM is a veth pair (``netlab``), its host end named as the
compute agent names the tap. Everything is named ``tbp-...`` (the agent's deploy prefix
is ``tbp``); processes are stopped by pid, and the agent's ``--cleanup`` and the lab
remove what was made.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import ADMIN_PASSWORD, IdentityServer
from netlab import Lab, sh
from network_api import NetworkServer
from stratus.agent.compute.apis import HttpNetworkApi
from stratus.agent.network.naming import Naming
from stratus.common.clients import PasswordAuth
from stratus.contracts.network import tap_name

pytestmark = [pytest.mark.integration]

PREFIX = "tbp"
HOST = "tbp-h1"
FOREVER = 300  # the agent's resync and retry intervals: no periodic pass in this test
NEEDED = ("ip", "nft", "bridge", "ethtool", "setsid")


def _until(cond: Any, limit: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        assert proc.poll() is None, "the network agent exited"
        time.sleep(0.05)
    return False


def test_a_tap_that_appears_after_the_pass_is_active_before_any_periodic_pass() -> None:
    missing = [t for t in NEEDED if not shutil.which(t)]
    agent_bin = Path(sys.executable).with_name("stratus-network-agent")
    if missing or not agent_bin.exists():
        pytest.skip(f"missing {missing or agent_bin}: run scripts/install-test-deps.sh")
    lab = Lab(tag=PREFIX)
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-boot-", dir="/tmp"))
    root.chmod(0o755)
    lab.dirs.append(root)
    started: list[Any] = []
    agent: subprocess.Popen[bytes] | None = None
    conf = root / "agent.conf"
    try:
        identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
        network = NetworkServer(root / "network", f"sqlite:///{root}/network.sqlite", identity)
        for server in (identity, network):
            server.prepare()
            server.start()
            started.append(server)
        host = lab.host(HOST)
        conf.write_text(
            f"[DEFAULT]\ndeploy_prefix = {PREFIX}\nidentity_url = {identity.url}/v3\n"
            "debug = true\n"
            f"[agent]\nhost = {HOST}\nl2_backend = linuxbridge\nunderlay_ip = 172.31.248.1\n"
            f"resync_interval = {FOREVER}\nretry_interval = {FOREVER}\n"
            f"network_state_url = {network.url}/v2.0/stratus-agent/hosts/{{host}}\n"
            f"username = admin\npassword = {ADMIN_PASSWORD}\nproject_name = admin\n"
            f"state_dir = {root / 'agent'}\nhost_netns = {host}\n")
        api = httpx.Client(base_url=network.url, timeout=30,
                           headers={"X-Auth-Token": identity.token()})

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = api.post(path, json=body)
            assert resp.status_code == 201, resp.text
            return dict(next(iter(resp.json().values())))

        net = post("/v2.0/networks", {"network": {"name": "tbp-boot"}})
        post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.78.0.0/24",
                                          "ip_version": 4, "gateway_ip": "10.78.0.1"}})
        port = post("/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST, "device_owner": "compute:nova",
            "device_id": "tbp-vm"}})

        log = root / "agent.log"
        with open(log, "ab") as out:
            agent = subprocess.Popen([str(agent_bin), "--config-file", str(conf)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        report = f"PUT {network.url}/v2.0/stratus-agent/hosts/{HOST}/ports"
        # the first pass ran to its end (its port report): it found no tap for the port
        assert _until(lambda: report in log.read_text(errors="replace"), 120, agent), \
            log.read_text(errors="replace")[-3000:]
        status = api.get(f"/v2.0/ports/{port['id']}").json()["port"]["status"]
        assert status == "DOWN"

        # the compute agent makes the tap (here a fake VM's veth) and waits for ACTIVE
        tap = tap_name(PREFIX, port["id"])
        began = time.monotonic()
        lab.vm(f"{PREFIX}-vm1", host, port["id"], port["mac_address"], tap=tap)
        waiter = HttpNetworkApi(network.url, PasswordAuth(f"{identity.url}/v3", "admin",
                                                          ADMIN_PASSWORD, "admin"))
        deadline = began + 120
        while status != "ACTIVE" and time.monotonic() < deadline:  # 30 s per long-poll
            status = waiter.wait_active(port["id"], deadline - time.monotonic())
        took = time.monotonic() - began
        assert waiter.can_wait, "the network API did not offer the long-poll"
        assert status == "ACTIVE", log.read_text(errors="replace")[-3000:]
        assert agent.poll() is None
        bridge = Naming(deploy_prefix=PREFIX).network_bridge(net["id"])
        assert f"master {bridge} " in sh("ip", "-n", host, "-o", "link", "show", tap)
        print(f"tap appeared -> port ACTIVE seen by the compute side: {took:.2f}s")
        print("\n".join([line for line in log.read_text(errors="replace").splitlines()
                        if "devwatch" in line or "HTTP Request" in line][-12:]))
        api.close()
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        if conf.exists():
            subprocess.run([str(agent_bin), "--config-file", str(conf), "--cleanup"],
                           capture_output=True, timeout=120, check=False)
        for server in reversed(started):
            server.stop()
        lab.cleanup()
