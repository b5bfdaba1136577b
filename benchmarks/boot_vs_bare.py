"""A Stratus boot next to a bare libvirt boot of the same guest, side by side in one run.

On an all-in-one cloud (deployed here with tests/e2e/test_boot_aio.deploy_cloud, or taken
with ``--prefix`` of a cloud deployed so), alternates N rounds of:

(a) bare libvirt: a qcow2 overlay on the same cached base image, ``virsh define`` +
    ``start`` of the domain XML Stratus itself wrote for a warm-up server (the same
    memory, CPU, machine, SMBIOS), with its NIC on a plain bridge that has its own dnsmasq
    (``--no-ping``) and a minimal metadata responder (169.254.169.254:80 DNAT-ed by an
    nftables table to a Python HTTP server); then ``virsh destroy`` + ``undefine``;
(b) Stratus: ``POST /servers`` of the same image, flavor m1.tiny, one network, no config
    drive (both guests fetch their metadata over HTTP); then ``DELETE``.

For each it prints request -> ACTIVE (bare: define + start returned), -> the guest's DHCP
lease ("network up" on its console), -> metadata fetched, -> the ready line, and delete ->
gone (Stratus: the API answers 404); then the medians and the ratios against the issue's
targets (ready at most 1.10 x bare, ACTIVE at most 1.0 s more than bare define + start).
Then 5 and 10 boots at once of each. ``--site-rerun`` also times a re-run of site.yml with
nothing to change (target: 45 s).

Figures, not pass/fail; the machine's two cores are shared, so read them with that in mind.
Root; libvirt, dnsmasq, nft, qemu-img (``make test-deps``). Host objects carry ``zbn``;
everything is removed at the end (the deployed cloud by teardown.yml). Run from the
repository root, in the project's virtualenv:

    .venv/bin/python benchmarks/boot_vs_bare.py [--rounds 5] [--parallel 5,10] \
        [--prefix /tmp/sdep-e2e-XXXX] [--site-rerun]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import ipaddress
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from test_boot_aio import Cloud, deploy_cloud, recap  # noqa: E402

VIRSH = ["virsh", "-q", "-c", "qemu:///system"]
MARKS = {"lease": "STRATUS-GUEST: network up", "metadata": "STRATUS-GUEST: metadata fetched",
         "ready": "STRATUS-GUEST: ready"}
POLL = 0.05
TIMEOUT = 300.0
TINY = REPO / "tests" / "images" / "cache" / "tiny.qcow2"


def sh(*cmd: str, check: bool = True) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def scan_console(path: Path, t0: float, seen: dict[str, float]) -> None:
    """Records (seconds since t0) the first time each marker shows in the console file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    now = time.monotonic() - t0
    for key, needle in MARKS.items():
        if key not in seen and needle in text:
            seen[key] = now


# ---- (a) bare libvirt ------------------------------------------------------------------
class MetadataHandler(http.server.BaseHTTPRequestHandler):
    """The least a guest needs: meta_data.json, no user data, empty extras."""

    def do_GET(self) -> None:
        if self.path.endswith("/meta_data.json"):
            body = json.dumps({"uuid": "zbn-bare", "hostname": "zbn-bare", "name": "zbn-bare",
                               "public_keys": {}}).encode()
        elif self.path.endswith(("/network_data.json", "/vendor_data.json")):
            body = b"{}"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class BareLab:
    """A plain bridge with dnsmasq and a metadata responder, and guests defined on it."""

    def __init__(self, template: str, base: Path) -> None:
        self.tag = "zbn" + secrets.token_hex(3)
        self.bridge = self.tag + "br"
        self.dir = Path(tempfile.mkdtemp(prefix=self.tag + "-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.template = template
        self.base = base
        used = sh("ip", "-br", "-4", "addr")
        for third in range(200, 250):
            net = ipaddress.ip_network(f"10.251.{third}.0/24")
            if f"10.251.{third}." not in used:
                break
        self.gateway = str(net.network_address + 1)
        self.net = net
        self.dnsmasq: subprocess.Popen[bytes] | None = None
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> BareLab:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        self.httpd = http.server.ThreadingHTTPServer((self.gateway, 0), MetadataHandler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        port = self.httpd.server_address[1]
        rules = (f"table ip {self.tag} {{\n chain pre {{\n"
                 "  type nat hook prerouting priority dstnat;\n"
                 f"  iifname \"{self.bridge}\" ip daddr 169.254.169.254 tcp dport 80"
                 f" dnat to {self.gateway}:{port}\n }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, timeout=60)
        hosts = list(self.net.hosts())
        self.dnsmasq = subprocess.Popen([
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            "--bind-interfaces", f"--interface={self.bridge}", "--except-interface=lo",
            f"--dhcp-range={hosts[9]},{hosts[200]},255.255.255.0,1h", "--no-ping",
            "--dhcp-authoritative", f"--dhcp-leasefile={self.dir / 'leases'}",
            f"--pid-file={self.dir / 'dnsmasq.pid'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __exit__(self, *exc: object) -> None:
        for name in sh(*VIRSH, "list", "--all", "--name", check=False).split():
            if name.startswith(self.tag):
                sh(*VIRSH, "destroy", name, check=False)
                sh(*VIRSH, "undefine", name, check=False)
        if self.dnsmasq is not None:
            self.dnsmasq.terminate()
            self.dnsmasq.wait(10)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        sh("nft", "delete", "table", "ip", self.tag, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def domain_xml(self, name: str, dom_uuid: str, disk: Path, console: Path) -> str:
        xml = self.template
        old = re.search(r"<uuid>([^<]+)</uuid>", xml)
        assert old is not None
        xml = xml.replace(old.group(1), dom_uuid)
        xml = re.sub(r"<name>[^<]+</name>", f"<name>{name}</name>", xml, count=1)
        xml = re.sub(r"<disk type=.file. device=.disk.>.*?</disk>",
                     f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                     f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>",
                     xml, count=1, flags=re.S)
        xml = re.sub(r"<disk type=.file. device=.cdrom.>.*?</disk>", "", xml, flags=re.S)
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
        xml = re.sub(r"<interface .*?</interface>",
                     f"<interface type='bridge'><mac address='{mac}'/>"
                     f"<source bridge='{self.bridge}'/><model type='virtio'/></interface>",
                     xml, count=1, flags=re.S)
        xml = re.sub(r"(<source path=)(['\"])[^'\"]+\2", rf"\1'{console}'", xml)
        return xml

    def boot(self) -> dict[str, float]:
        """One bare boot and destroy; seconds since the first command for each step."""
        name = f"{self.tag}-{secrets.token_hex(3)}"
        disk, console, xml_file = (self.dir / f"{name}.qcow2", self.dir / f"{name}.log",
                                   self.dir / f"{name}.xml")
        xml_file.write_text(self.domain_xml(name, str(uuid.uuid4()), disk, console))
        seen: dict[str, float] = {}
        t0 = time.monotonic()
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.base), "-F", "qcow2",
           str(disk))
        sh(*VIRSH, f"define {xml_file}; start {name}")
        seen["active"] = time.monotonic() - t0
        while "ready" not in seen and time.monotonic() - t0 < TIMEOUT:
            scan_console(console, t0, seen)
            time.sleep(POLL)
        t1 = time.monotonic()
        sh(*VIRSH, f"destroy {name}; undefine {name}")
        disk.unlink()
        seen["delete"] = time.monotonic() - t1
        console.unlink(missing_ok=True)
        return seen


# ---- (b) Stratus -----------------------------------------------------------------------
class StratusBoots:
    """Servers of the tiny image on one network of the cloud, booted through the API."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.tag = "zbn" + secrets.token_hex(3)
        self.image_id = ""
        self.network_id = ""
        self.flavor_id = ""

    def __enter__(self) -> StratusBoots:
        c = self.cloud
        resp = c.api("POST", "image", "/v2/images", json={
            "name": self.tag + "-tiny", "disk_format": "qcow2", "container_format": "bare"})
        assert resp.status_code == 201, resp.text
        self.image_id = resp.json()["id"]
        with TINY.open("rb") as f:
            resp = c.api("PUT", "image", f"/v2/images/{self.image_id}/file", content=f.read(),
                         headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 204, resp.text
        resp = c.api("POST", "network", "/v2.0/networks", json={"network": {
            "name": self.tag + "-net"}})
        assert resp.status_code == 201, resp.text
        self.network_id = resp.json()["network"]["id"]
        resp = c.api("POST", "network", "/v2.0/subnets", json={"subnet": {
            "network_id": self.network_id, "ip_version": 4, "cidr": "192.168.79.0/24",
            "name": self.tag + "-subnet"}})
        assert resp.status_code == 201, resp.text
        flavors = c.api("GET", "compute", "/flavors").json()["flavors"]
        self.flavor_id = next(f["id"] for f in flavors if f["name"] == "m1.tiny")
        return self

    def __exit__(self, *exc: object) -> None:
        c = self.cloud
        servers = c.api("GET", "compute", "/servers").json().get("servers", [])
        for server in servers:
            if server["name"].startswith(self.tag):
                self.delete(server["id"])
        if self.network_id:
            c.api("DELETE", "network", f"/v2.0/networks/{self.network_id}")
        if self.image_id:
            c.api("DELETE", "image", f"/v2/images/{self.image_id}")

    def delete(self, server_id: str) -> None:
        self.cloud.api("DELETE", "compute", f"/servers/{server_id}")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.cloud.api("GET", "compute", f"/servers/{server_id}").status_code == 404:
                return
            time.sleep(POLL * 2)
        raise TimeoutError(f"server {server_id} still there")

    def boot(self, keep: bool = False) -> tuple[dict[str, float], str]:
        """One boot through the API (and its delete unless ``keep``)."""
        c = self.cloud
        seen: dict[str, float] = {}
        t0 = time.monotonic()
        resp = c.api("POST", "compute", "/servers", json={"server": {
            "name": f"{self.tag}-{secrets.token_hex(3)}", "imageRef": self.image_id,
            "flavorRef": self.flavor_id, "networks": [{"uuid": self.network_id}]}})
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        console = c.instances / sid / "console.log"
        last_get = 0.0
        while "ready" not in seen and time.monotonic() - t0 < TIMEOUT:
            if "active" not in seen and time.monotonic() - last_get >= 2 * POLL:
                last_get = time.monotonic()
                server = c.api("GET", "compute", f"/servers/{sid}").json()["server"]
                if server["status"] == "ACTIVE":
                    seen["active"] = time.monotonic() - t0
                elif server["status"] == "ERROR":
                    # counted, not fatal: one failed boot among many says something too
                    fault = (server.get("fault") or {}).get("message", "")
                    print(f"  server {sid} went to ERROR after "
                          f"{time.monotonic() - t0:.1f} s: {fault}", flush=True)
                    seen["error"] = time.monotonic() - t0
                    break
            scan_console(console, t0, seen)
            time.sleep(POLL)
        if keep:
            return seen, sid
        t1 = time.monotonic()
        self.delete(sid)
        seen["delete"] = time.monotonic() - t1
        return seen, sid


# ---- the run ---------------------------------------------------------------------------
COLUMNS = ("active", "lease", "metadata", "ready", "delete")


def row(label: str, seen: dict[str, float]) -> str:
    cells = " ".join(f"{seen[k]:8.2f}" if k in seen else "       -" for k in COLUMNS)
    return f"  {label:<22} {cells}"


def summary(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    """Median, min and max of each step over the runs that reached it (a guest whose
    udhcpc gave up before its NIC answered never prints the later lines: says how many)."""
    values = {k: [r[k] for r in runs if k in r] for k in COLUMNS}
    med = {k: statistics.median(v) for k, v in values.items() if v}
    print(row(label + " median", med))
    print(row(label + " min", {k: min(v) for k, v in values.items() if v}))
    print(row(label + " max", {k: max(v) for k, v in values.items() if v}))
    errors = sum(1 for r in runs if "error" in r)
    if errors:
        print(f"  ({label}: {errors} of {len(runs)} boots went to ERROR)")
    short = {k: len(v) for k, v in values.items() if len(v) < len(runs)}
    if short:
        print(f"  ({label}: of {len(runs)} boots, reached: "
              + ", ".join(f"{k} {n}" for k, n in short.items()) + ")")
    return med


def header() -> None:
    print(f"  {'seconds':<22} " + " ".join(f"{k:>8}" for k in COLUMNS))


def at_once(lab: BareLab, stratus: StratusBoots, count: int) -> None:
    print(f"\n{count} boots at once (each from its own request; per boot, then median)")
    header()
    with ThreadPoolExecutor(count) as pool:
        bare = list(pool.map(lambda _: lab.boot(), range(count)))
        summary(f"bare x{count}", bare)
        ours = list(pool.map(lambda _: stratus.boot()[0], range(count)))
        summary(f"stratus x{count}", ours)


@contextlib.contextmanager
def the_cloud(prefix: str | None) -> Iterator[tuple[Cloud, bool]]:
    if prefix:
        root = Path(prefix)
        yield Cloud(root, root, {}, {}, "", root / "none"), False
        return
    gen = deploy_cloud()
    try:
        yield next(gen), True
    finally:
        gen.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", default="5,10", help="boots at once, comma separated")
    parser.add_argument("--prefix", help="the stratus_prefix of a cloud deployed as "
                        "test_boot_aio deploys it (default: deploy one, tear it down after)")
    parser.add_argument("--site-rerun", action="store_true",
                        help="also time a re-run of site.yml (only on a cloud deployed here)")
    args = parser.parse_args()
    started = time.monotonic()
    with the_cloud(args.prefix) as (cloud, deployed), StratusBoots(cloud) as stratus:
        print(f"cloud ready after {time.monotonic() - started:.0f} s; warm-up boot")
        _, sid = stratus.boot(keep=True)
        template = (cloud.instances / sid / "domain.xml").read_text()
        info = json.loads(sh("qemu-img", "info", "-U", "--output=json",
                             str(cloud.instances / sid / "disk")))
        base = Path(info["backing-filename"])
        stratus.delete(sid)
        with BareLab(template, base) as lab:
            lab.boot()
            bare: list[dict[str, float]] = []
            ours: list[dict[str, float]] = []
            print(f"\n{args.rounds} alternating rounds, seconds from the request")
            header()
            for i in range(args.rounds):
                bare.append(lab.boot())
                print(row(f"bare {i + 1}", bare[-1]))
                ours.append(stratus.boot()[0])
                print(row(f"stratus {i + 1}", ours[-1]))
            print()
            b = summary("bare", bare)
            s = summary("stratus", ours)
            for key, what, target in (("ready", "request -> ready", "<= 1.10"),
                                      ("lease", "request -> DHCP lease", ""),
                                      ("metadata", "request -> metadata fetched", ""),
                                      ("delete", "delete -> gone / destroy + undefine", "")):
                if key in s and key in b:
                    print(f"{what}: stratus/bare = {s[key] / b[key]:.2f}"
                          + (f" (target {target})" if target else ""))
            if "active" in s and "active" in b:
                print(f"request -> ACTIVE minus bare define + start = "
                      f"{s['active'] - b['active']:+.2f} s (target <= +1.0 s)")
            for count in (int(n) for n in args.parallel.split(",") if n.strip()):
                at_once(lab, stratus, count)
        if args.site_rerun and deployed:
            t = time.monotonic()
            out = cloud.ansible(REPO / "playbooks" / "site.yml", "site-rerun.log", lock=True)
            took = time.monotonic() - t
            print(f"\nsite.yml re-run: {took:.1f} s, changed={recap(out)['changed']} "
                  f"(target <= 45 s; ratio {took / 45:.2f} of the target)")


if __name__ == "__main__":
    main()
