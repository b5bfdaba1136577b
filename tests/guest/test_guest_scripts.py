"""The tiny guest's own scripts, run on the host with the guest's busybox.

Faster and more thorough than a boot for the parts with many cases: the
JSON reader of the metadata client, and the DHCP hook (run inside a private
network namespace on a veth pair, so the host's network is never touched),
including the classless static routes of option 121 that QEMU's DHCP server
cannot send.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from guest_vm import IMAGES

pytestmark = pytest.mark.integration

TINY = IMAGES / "tiny"
JSON_AWK = TINY / "usr" / "lib" / "stratus" / "json.awk"
DHCP_HOOK = TINY / "usr" / "share" / "udhcpc" / "default.script"


@pytest.fixture(scope="module")
def busybox(tiny_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox of the tiny image, taken from the .deb its build downloaded."""
    debs = sorted((tiny_image.parent / "debs").glob("busybox-static_*.deb"))
    assert debs, "build-tiny.sh keeps its .debs in <cache>/debs"
    root = tmp_path_factory.mktemp("busybox")
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    return root / "bin" / "busybox"


def flatten(
    busybox: Path, document: str, want: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = [str(busybox), "awk"]
    if want is not None:
        args += ["-v", f"want={want}"]
    return subprocess.run(
        [*args, "-f", str(JSON_AWK)], input=document, capture_output=True, text=True
    )


def test_json_reader_flattens_nova_style_metadata(busybox: Path) -> None:
    document = json.dumps(
        {
            "uuid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
            "hostname": "web-1.example.org",
            "public_keys": {"ops": "ssh-ed25519 AAAAC3 ops@host\n", "second.key": "ssh-rsa AAAA x"},
            "keys": [{"name": "ops", "type": "ssh", "data": "ssh-ed25519 AAAAC3 ops@host\n"}],
            "meta": {"quote": 'say "hi"\\now', "tab": "a\tb", "empty": ""},
            "launch_index": 0,
            "availability_zone": None,
            "flags": [True, False],
            "nested": {"deeper": {"list": [1.5e3, -2]}},
            "unicode": "caf\u00e9 \u2713",
            "none": {},
            "nothing": [],
        },
        ensure_ascii=True,
    )
    done = flatten(busybox, document)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "uuid\t0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
        "hostname\tweb-1.example.org",
        "public_keys.ops\tssh-ed25519 AAAAC3 ops@host",
        "public_keys.second.key\tssh-rsa AAAA x",
        "keys.0.name\tops",
        "keys.0.type\tssh",
        "keys.0.data\tssh-ed25519 AAAAC3 ops@host",
        'meta.quote\tsay "hi"\\now',
        "meta.tab\ta b",
        "meta.empty\t",
        "launch_index\t0",
        "availability_zone\tnull",
        "flags.0\ttrue",
        "flags.1\tfalse",
        "nested.deeper.list.0\t1500.0",
        "nested.deeper.list.1\t-2",
        "unicode\tcaf\u00e9 \u2713",
    ]


def test_json_reader_picks_one_value_and_tolerates_pretty_printing(busybox: Path) -> None:
    document = json.dumps({"name": "x", "uuid": "u-1", "meta": {"uuid": "inner"}}, indent=4)
    done = flatten(busybox, document, want="uuid")
    assert (done.returncode, done.stdout) == (0, "u-1\n")


@pytest.mark.parametrize(
    "document", ['{"a": [1, 2', '{"a" 1}', '{"a": tru}', '{"a": "x"} trailing', ""]
)
def test_json_reader_rejects_broken_documents(busybox: Path, document: str) -> None:
    done = flatten(busybox, document)
    assert done.returncode != 0
    assert "json.awk:" in done.stderr


def _run_hook_in_netns(busybox: Path, tmp_path: Path, env: dict[str, str]) -> str:
    """Run the DHCP hook for eth0 ("bound") in a new network namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private network namespace")
    state = tmp_path / "state"
    script = (
        "set -e\n"
        "ip link add eth0 type veth peer name peer0\n"
        "ip link set peer0 up\n"
        f"{busybox} sh {DHCP_HOOK} deconfig\n"
        f"{busybox} sh {DHCP_HOOK} bound\n"
        "echo '== addr'; ip -4 -o addr show dev eth0 | awk '{print $4}'\n"
        "echo '== routes'; ip -4 route show | sort\n"
        # (not /sys/class/net: that sysfs shows the host's namespace)
        "echo '== mtu'; ip -o link show dev eth0 | sed 's/.* mtu \\([0-9]*\\).*/\\1/'\n"
    )
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "interface": "eth0",
        "STRATUS_STATE_DIR": str(state),
        "STRATUS_RESOLV_CONF": str(tmp_path / "resolv.conf"),
        "STRATUS_CONSOLE": str(tmp_path / "console.log"),
        **env,
    }
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        env=full_env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (state / "ip.eth0").read_text().strip() == f"{env['ip']}/{env['mask']}"
    return done.stdout


def test_dhcp_hook_applies_classless_static_routes(busybox: Path, tmp_path: Path) -> None:
    out = _run_hook_in_netns(
        busybox,
        tmp_path,
        {
            "ip": "192.0.2.10", "mask": "24", "subnet": "255.255.255.0",
            "broadcast": "192.0.2.255", "router": "192.0.2.254", "mtu": "1450",
            # option 121: metadata via the DHCP server, a network, the default
            "staticroutes": "169.254.169.254/32 192.0.2.2 198.51.100.0/24 192.0.2.3 "
            "0.0.0.0/0 192.0.2.1",
            "dns": "192.0.2.53 192.0.2.54", "domain": "example.org",
        },
    )
    assert "== addr\n192.0.2.10/24\n" in out
    routes = out.split("== routes\n")[1].split("== mtu")[0]
    # RFC 3442: with option 121 the router option (192.0.2.254) is ignored.
    assert "default via 192.0.2.1 dev eth0 onlink" in routes
    assert "169.254.169.254 via 192.0.2.2 dev eth0 onlink" in routes
    assert "198.51.100.0/24 via 192.0.2.3 dev eth0 onlink" in routes
    assert "192.0.2.254" not in routes
    assert out.split("== mtu\n")[1].strip() == "1450"
    assert (tmp_path / "resolv.conf").read_text() == (
        "search example.org\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
    )


def test_dhcp_hook_uses_the_router_without_static_routes(busybox: Path, tmp_path: Path) -> None:
    out = _run_hook_in_netns(
        busybox,
        tmp_path,
        {"ip": "10.9.8.7", "mask": "16", "router": "10.9.0.1 10.9.0.2", "dns": "10.9.0.1"},
    )
    routes = out.split("== routes\n")[1].split("== mtu")[0]
    assert "default via 10.9.0.1 dev eth0 onlink" in routes
    assert "10.9.0.2" not in routes
    assert "10.9.0.0/16 dev eth0" in routes


def test_curl_stand_in_gets_and_posts_over_busybox_wget(busybox: Path, tmp_path: Path) -> None:
    """tiny/usr/bin/curl (Tempest's `curl URL`, `curl -X POST -d DATA URL`) on busybox
    wget, against a local HTTP server; options it does not know exit 2."""
    import http.server
    import threading

    posted: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"172.24.4.10")

        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in ("wget", "timeout"):
        (bindir / applet).symlink_to(busybox)
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    url = f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/public-ipv4"
    curl = [str(busybox), "sh", str(TINY / "usr" / "bin" / "curl")]
    try:
        got = subprocess.run([*curl, url], env=env, capture_output=True, text=True,
                             timeout=60)
        assert (got.returncode, got.stdout) == (0, "172.24.4.10"), got.stderr
        done = subprocess.run([*curl, "-X", "POST", "-d", "testtest", url], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert posted == [b"testtest"]
        bad = subprocess.run([*curl, "-k", url], env=env, capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 2 and "option -k is not supported" in bad.stderr
    finally:
        server.shutdown()
        server.server_close()
