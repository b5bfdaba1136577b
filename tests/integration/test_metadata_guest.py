"""Real cloud-init against the real chain: guest -> metadata proxy -> stratus-metadata.

One Debian guest (tests/images/build-debian.sh, real cloud-init) boots under
QEMU/TCG without a config drive. QEMU's user network forwards each of the
guest's connections to 169.254.169.254:80 to a small relay (``guestfwd``) that
connects to the real metadata proxy (``python -m stratus.agent.network.metadata_proxy``
on 127.0.0.1), which signs and forwards to a real ``stratus-metadata``, which
looks the instance up in a fake compute API. The instance document says the
NIC is static (the address QEMU's DHCP would give, so SSH forwarding still
reaches it): cloud-init must configure it from our network_data.json, take
the hostname, key and user data from our files, and crawl our EC2 tree.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_metadata_server import NET, SECRET, FakeCompute, MetadataProcess, instance_doc

from helpers import free_port, stop, wait_http

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "guest"))

import guest_vm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAC = "fa:16:3e:5e:ae:01"
GUEST_IP = "169.254.169.15"  # QEMU's first DHCP address on the net guest_vm sets up
CLOUD_INIT_FINISHED = re.compile(r"Cloud-init v\. \S+ finished at", re.M)

# Run by QEMU for each guest connection to 169.254.169.254:80 (stdin/stdout are
# the connection): relays it to the metadata proxy on 127.0.0.1:<argv[1]>.
RELAY = """\
import os, socket, sys, threading
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)
threading.Thread(target=upstream, daemon=True).start()
while True:
    data = conn.recv(65536)
    if not data:
        break
    while data:
        data = data[os.write(1, data):]
"""


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[FakeCompute, MetadataProcess, int]]:
    compute = FakeCompute()
    meta = MetadataProcess(compute.url, tmp_path)
    meta.start()
    port = free_port()
    conf = tmp_path / "proxy.json"
    conf.write_text(json.dumps({
        "network_id": NET, "upstream_url": meta.url, "shared_secret": SECRET,
        "listen_host": "127.0.0.1", "listen_port": port}))
    conf.chmod(0o600)
    with open(tmp_path / "proxy.log", "wb") as log:
        proxy = subprocess.Popen([sys.executable, "-m", "stratus.agent.network.metadata_proxy",
                                  "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthcheck", proc=proxy)
        yield compute, meta, port
    finally:
        stop(proxy)
        meta.stop()
        compute.close()


def test_cloud_init_configures_a_guest_from_stratus_metadata(
    chain: tuple[FakeCompute, MetadataProcess, int], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sys.platform != "linux":
        pytest.skip("QEMU guests are Linux-only here")
    reason = guest_vm.ensure_host_tools()
    if reason:
        pytest.skip(reason)
    image = guest_vm.build_image("build-debian.sh")
    key = guest_vm.make_ssh_key(tmp_path)
    compute, meta, proxy_port = chain

    doc = instance_doc("127.0.0.1", 42)  # the proxy sees the relay's address
    doc.update(hostname="smeta-deb", name="smeta-deb")
    doc["keys"] = [{"name": "test", "type": "ssh",
                    "data": key.with_suffix(".pub").read_text().strip()}]
    doc["user_data"] = base64.b64encode(
        b"#cloud-config\n"
        b"write_files:\n"
        b"  - path: /etc/stratus-test\n"
        b"    content: from stratus-metadata\n"
        b"runcmd:\n"
        b"  - [sh, -c, 'echo STRATUS-SMETA: runcmd ran > /dev/ttyS0']\n").decode()
    doc["networks"][0].update(
        mac_address=MAC, mtu=1500, ip_address=GUEST_IP,
        subnet={"id": "sub", "cidr": "169.254.169.0/24", "gateway_ip": "169.254.169.1",
                "dns_nameservers": ["169.254.169.3"], "host_routes": [],
                "enable_dhcp": True})
    compute.docs[(NET, "127.0.0.1")] = doc

    # guest_vm runs its responder script with the metadata root as argument for each
    # connection: here the script is the relay and the argument the proxy's port.
    monkeypatch.setattr(guest_vm, "METADATA_RESPONDER", RELAY)
    guest = guest_vm.QemuGuest(tmp_path, "smeta")
    try:
        guest.start(image, metadata_root=Path(str(proxy_port)), memory_mib=1024, mac=MAC)
        guest.wait_for(CLOUD_INIT_FINISHED, 600)
        assert "STRATUS-SMETA: runcmd ran" in guest.console()
        done = guest.ssh(
            key,
            "cat /run/cloud-init/result.json; echo ===; hostname; cat /etc/stratus-test; echo;"
            " cat /var/lib/cloud/data/instance-id; echo ===; cat /etc/network/interfaces.d/*;"
            " echo ===; ip -4 route show default",
            user="debian", timeout=120)
    finally:
        guest.stop()
        for overlay in tmp_path.glob("*-disk.qcow2"):
            overlay.unlink()
    assert done.returncode == 0, done.stderr
    result_text, ident, interfaces, route = done.stdout.split("===\n")
    result = json.loads(result_text)["v1"]
    assert result["errors"] == [], result
    assert result["datasource"].startswith("DataSourceOpenStack"), result
    assert [line for line in ident.split("\n") if line.strip()] == [
        "smeta-deb", "from stratus-metadata", doc["uuid"]]
    # the NIC configured statically from network_data.json, not by DHCP
    assert re.search(r"iface \S+ inet static", interfaces), interfaces
    assert f"address {GUEST_IP}/24" in interfaces, interfaces
    assert "gateway 169.254.169.1" in interfaces, interfaces
    assert "169.254.169.3" in interfaces  # DNS from the services
    assert "via 169.254.169.1" in route, route
    log = meta.log()
    assert re.search(r'"GET /openstack/[0-9a-z-]+/network_data.json" 200', log), log[-3000:]
    assert re.search(r'"GET /\S+/meta-data/\S*" 200', log), log[-3000:]  # the EC2 crawl
    assert not re.search(r'" 5\d\d ', log), log[-3000:]
