"""A small network lab for the agent's integration tests and benchmark.

Fake hosts and fake VMs are network namespaces named ``st-...``; the lab
records everything it creates and removes it in :meth:`Lab.cleanup`
(processes by pid, never by name). A fake VM is a veth pair: ``tap<port>``
in its host's namespace, ``eth0`` with the port's MAC in the VM's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc hook of a fake VM: apply the lease (address, MTU, option 121 routes).
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi
    echo "$ip" > "/tmp/st-udhcpc-$interface-$(ip netns identify)"
    ;;
esac
exit 0
"""

TCP_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
    while True:
        c, addr = s.accept()
        try:
            c.sendall(addr[0].encode())
        finally:
            c.close()
""")

TCP_CLIENT = textwrap.dedent("""
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
        c.settimeout(float(sys.argv[3]))
        print(c.recv(100).decode())
    except OSError as exc:
        print("ERROR", exc); sys.exit(1)
""")


def sh(*argv: str, check: bool = True, timeout: float = 30, input: str | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def nsx(ns: str, *argv: str, **kw) -> str:  # type: ignore[no-untyped-def]
    return sh("ip", "netns", "exec", ns, *argv, **kw)


@dataclass
class FakeVM:
    name: str          # its namespace
    host_ns: str
    tap: str
    mac: str


class Lab:
    """Creates ``st-`` namespaces, veths, processes; removes all of them."""

    def __init__(self, tag: str = "st"):
        self.tag = tag
        self.namespaces: list[str] = []
        self.pids: list[int] = []
        self.dirs: list[Path] = []  # removed by cleanup
        self.tmp = Path(tempfile.mkdtemp(prefix="stratus-netlab-"))
        self.script = self.tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    # --- namespaces -------------------------------------------------------------------
    def netns(self, name: str) -> str:
        if Path("/run/netns", name).exists():
            self._stop_ns_pids(name)
            sh("ip", "netns", "delete", name, check=False)
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        self.namespaces.append(name)
        return name

    def host(self, name: str) -> str:
        ns = self.netns(name)
        etc = Path("/etc/netns") / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost {name}\n")
        (etc / "resolv.conf").write_text("")
        return ns

    def link_hosts(self, ns_a: str, dev_a: str, ip_a: str | None,
                   ns_b: str, dev_b: str, ip_b: str | None) -> None:
        """A veth between two namespaces, with optional addresses (cidr)."""
        sh("ip", "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b,
           "netns", ns_b)
        for ns, dev, ip in ((ns_a, dev_a, ip_a), (ns_b, dev_b, ip_b)):
            if ip:
                sh("ip", "-n", ns, "addr", "add", ip, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def vm(self, name: str, host_ns: str, port_id: str, mac: str,
           tap: str | None = None) -> FakeVM:
        """``tap``: the host end's name (the deploy's tap name; default ``tap<port[:11]>``)."""
        ns = self.netns(name)
        tap = tap or "tap" + port_id[:11]
        sh("ip", "-n", host_ns, "link", "add", tap, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", host_ns, "link", "set", tap, "up")
        return FakeVM(ns, host_ns, tap, mac)

    def ovs(self, host_ns: str) -> str:
        """A private Open vSwitch (ovsdb-server + ovs-vswitchd) for one fake host.

        Every path goes through OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR,
        so several instances coexist without private mount namespaces; the
        vswitchd runs inside the host's network namespace. Returns the rundir.
        """
        d = self.tmp / f"ovs-{host_ns}"
        d.mkdir()
        env = {**os.environ, "OVS_RUNDIR": str(d), "OVS_DBDIR": str(d), "OVS_LOGDIR": str(d),
               "OVS_SYSCONFDIR": str(d), "OVS_PKGDATADIR": "/usr/share/openvswitch"}
        sh("ovsdb-tool", "create", str(d / "conf.db"),
           "/usr/share/openvswitch/vswitch.ovsschema")

        def start(*argv: str) -> None:
            subprocess.run(["ip", "netns", "exec", host_ns, *argv], env=env, check=True,
                           capture_output=True, timeout=30)

        start("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock",
              f"--pidfile={d}/ovsdb-server.pid", f"--unixctl={d}/ovsdb-server.ctl",
              "--detach", f"--log-file={d}/ovsdb-server.log")
        self.pids.append(int((d / "ovsdb-server.pid").read_text()))
        subprocess.run(["ovs-vsctl", "--no-wait", "init"], env=env, check=True, timeout=30)
        start("ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
              f"--unixctl={d}/ovs-vswitchd.ctl", "--detach", f"--log-file={d}/ovs-vswitchd.log")
        self.pids.insert(0, int((d / "ovs-vswitchd.pid").read_text()))
        return str(d)

    # --- what a VM does ---------------------------------------------------------------
    def dhcp(self, vm: FakeVM, tries: int = 10) -> str | None:
        """Run busybox udhcpc once; the leased address, or None."""
        out = nsx(vm.name, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t",
                  str(tries), "-T", "1", "-A", "1", "-O", "staticroutes", "-O", "mtu",
                  "-s", str(self.script), check=False, timeout=60)
        addrs = json.loads(sh("ip", "-n", vm.name, "-j", "-4", "addr", "show", "dev", "eth0"))
        for entry in addrs:
            for a in entry.get("addr_info", []):
                return str(a["local"])
        _ = out
        return None

    def ping(self, ns: str, ip: str, count: int = 2, source: str | None = None) -> bool:
        argv = ["ping", "-c", str(count), "-W", "1", "-i", "0.2", ip]
        if source:
            argv[1:1] = ["-I", source]
        proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              timeout=30)
        return proc.returncode == 0

    def tcp_server(self, ns: str, port: int) -> int:
        """A TCP server in ``ns`` that answers each connection with the peer's IP."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", TCP_SERVER,
                                 str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.pids.append(proc.pid)
        time.sleep(0.3)
        return proc.pid

    def tcp_get(self, ns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
        proc = subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", TCP_CLIENT, ip,
                               str(port), str(timeout)], capture_output=True, text=True,
                              timeout=30)
        return proc.stdout.strip() if proc.returncode == 0 else None

    # --- cleanup ----------------------------------------------------------------------
    def _stop_ns_pids(self, ns: str) -> None:
        out = sh("ip", "netns", "pids", ns, check=False)
        for pid in (int(p) for p in out.split() if p.isdigit()):
            stop(pid)

    def cleanup(self) -> None:
        for pid in self.pids:
            stop(pid)
        for ns in reversed(self.namespaces):
            if Path("/run/netns", ns).exists():
                self._stop_ns_pids(ns)
                sh("ip", "netns", "delete", ns, check=False)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
            for f in Path("/tmp").glob(f"st-udhcpc-*-{ns}"):
                f.unlink(missing_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def stop(pid: int, timeout: float = 5.0) -> None:
    """Stop one process (and its session children) by pid."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    return
            except ChildProcessError:
                if not Path(f"/proc/{pid}").exists():
                    return
            time.sleep(0.05)
