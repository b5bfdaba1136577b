"""The metadata proxy process: 169.254.169.254:80 inside a namespace, forwarding upstream.

Run by the agent as ``python -m stratus.agent.network.metadata_proxy --config FILE``.
The process itself stays in the agent's network namespace (where
``stratus-metadata`` is reachable); only its listening socket is created
inside the DHCP/router namespace (``setns`` around ``bind``), as Neutron's
proxy reaches its agent through a socket that crosses the namespace.

Each request goes upstream with:

* ``X-Forwarded-For``: the instance's fixed IP (the client address);
* ``X-Stratus-Network-ID``: the network the namespace serves;
* ``X-Stratus-Signature``: hex HMAC-SHA256, keyed with the shared secret, of
  ``"<network id>\\n<fixed ip>"`` (:func:`sign`).

In a router namespace one proxy serves every network behind the router: the
settings map each subnet CIDR to its network (``subnets``) and the client's
address picks the network (a client on none of them gets 404).

In a DHCP namespace the proxy also listens on ``fe80::a9fe:a9fe`` (``listen_v6``: the
device and its ifindex, the socket's scope) and maps a link-local client to a fixed IP of
its port before signing (:mod:`stratus.agent.network.metadata_v6`: ``slaac_prefixes`` and
the ``hosts_file`` it re-reads when it changed).

The config file (JSON, mode 0600) holds ``netns``, ``network_id``, ``subnets``,
``upstream_url``, ``shared_secret``, ``listen_host``, ``listen_port``, ``pid_file`` and
``netns_id_file`` (and ``listen_v6``, ``slaac_prefixes``, ``hosts_file`` where it serves
IPv6). An empty secret is refused: the process exits with status 2.

Once listening, the process writes ``netns_id_file`` (the ``<device>:<inode>`` of the
namespace its socket was bound in, read from the very file descriptor it entered) and
then ``pid_file``: the agent compares that identity with the namespace that has the
name now, since a process whose socket sits in a deleted namespace looks alive but
answers nobody.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import socket
import socketserver
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stratus.agent.network.metadata_v6 import HostsFile, client_address, fixed_ip_for

CLONE_NEWNET = 0x40000000
IP_FREEBIND = 15  # bind before the address is there (a device being set up)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
OUR_HEADERS = {"x-forwarded-for", "x-stratus-network-id", "x-stratus-signature"}


def sign(secret: str, network_id: str, fixed_ip: str) -> str:
    """The signature stratus-metadata checks (constant-time) before answering."""
    if not secret:
        raise ValueError("the metadata shared secret must not be empty")
    message = f"{network_id}\n{fixed_ip}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _setns(path: str) -> str:
    """Enter the network namespace of ``path``; returns its ``<device>:<inode>``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
        return f"{st.st_dev}:{st.st_ino}"
    finally:
        os.close(fd)


def bind_in_netns(netns_path: str | None, factory: Any,
                  entered: list[str] | None = None) -> Any:
    """Call ``factory()`` (which binds a socket) inside ``netns_path``, then come back;
    the identity of the namespace entered is appended to ``entered`` when given."""
    if not netns_path:
        return factory()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        identity = _setns(netns_path)
        if entered is not None:
            entered.append(identity)
        try:
            return factory()
        finally:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the agent namespace failed")
    finally:
        os.close(own)


def network_of(client_ip: str, network_id: str,
               subnets: list[tuple[ipaddress.IPv4Network, str]]) -> str | None:
    """The network a request comes from: the namespace's own (DHCP), or in a router the
    network of the most specific subnet holding the client's address."""
    if not subnets:
        return network_id or None
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    best = [(net.prefixlen, nid) for net, nid in subnets if addr in net]
    return max(best)[1] if best else None


def make_handler(network_id: str, upstream_url: str, secret: str,
                 subnets: dict[str, str] | None = None,
                 slaac_prefixes: list[str] | None = None, hosts_file: str | None = None
                 ) -> type:
    """The request handler class; ``slaac_prefixes``/``hosts_file`` map link-local clients
    to a fixed IP of their port (``metadata_v6``)."""
    upstream = urllib.parse.urlsplit(upstream_url)
    base_path = upstream.path.rstrip("/")
    cidrs = [(ipaddress.IPv4Network(c, strict=False), n) for c, n in (subnets or {}).items()]
    hosts = HostsFile(hosts_file)
    prefixes = tuple(slaac_prefixes or ())
    hosts_lock = threading.Lock()

    def fixed_ip(raw: str) -> tuple[str | None, str]:
        """(the address to sign, or None; why not) for the client address ``raw``."""
        addr = client_address(raw)
        if addr is None:
            return None, f"the client address {raw!r} is not an IP address"
        if isinstance(addr, ipaddress.IPv6Address) and addr.is_link_local:
            with hosts_lock:
                known = hosts.current()
            found = fixed_ip_for(addr, known, prefixes)
            if found is None:
                return None, (f"no port of this network has the MAC of the link-local "
                              f"address {addr} (an EUI-64 one is needed)")
            return found, ""
        return str(addr), ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stratus-metadata-proxy"
        # Headers and body go out in two writes: without TCP_NODELAY the body waits
        # for the guest's delayed ACK (~40 ms per request on a keep-alive connection).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write("metadata-proxy: " + (format % args) + "\n")

        def _proxy(self) -> None:
            client_ip, why = fixed_ip(self.client_address[0])
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            net_id = network_of(client_ip, network_id, cidrs) if client_ip else None
            if client_ip is None or net_id is None:
                data = (why or "no network behind this router holds the client address"
                        ).encode() + b"\n"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            headers = {
                k: v for k, v in self.headers.items()
                if k.lower() not in HOP_BY_HOP and k.lower() not in OUR_HEADERS
            }
            headers["X-Forwarded-For"] = client_ip
            headers["X-Stratus-Network-ID"] = net_id
            headers["X-Stratus-Signature"] = sign(secret, net_id, client_ip)
            conn_cls = (http.client.HTTPSConnection if upstream.scheme == "https"
                        else http.client.HTTPConnection)
            try:
                conn = conn_cls(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
                conn.request(self.command, base_path + self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                resp_headers = [(k, v) for k, v in resp.getheaders()
                                if k.lower() not in HOP_BY_HOP]
                conn.close()
            except OSError as exc:
                self.log_message("upstream %s failed: %s", upstream_url, exc)
                status, data = 502, b"metadata service unavailable\n"
                resp_headers = [("Content-Type", "text/plain")]
            self.send_response(status)
            for key, value in resp_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _proxy

    return Handler


class _V6Server(ThreadingHTTPServer):
    """An HTTP server on a link-local address: its scope is the device (``ifindex``)."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        socketserver.TCPServer.server_bind(self)  # no reverse lookup of the address
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


def _servers(conf: dict[str, Any], handler: type) -> tuple[ThreadingHTTPServer,
                                                           ThreadingHTTPServer | None]:
    """The IPv4 server and, with ``listen_v6``, the link-local one (None when this host
    has no IPv6: the IPv4 address is still served)."""
    v4 = ThreadingHTTPServer(
        (conf.get("listen_host", "169.254.169.254"), int(conf.get("listen_port", 80))), handler)
    listen_v6 = conf.get("listen_v6")
    if not listen_v6:
        return v4, None
    address = (listen_v6["address"], int(conf.get("listen_port", 80)), 0,
               int(listen_v6["ifindex"]))
    try:
        return v4, _V6Server(address, handler)
    except OSError as exc:
        sys.stderr.write(f"metadata-proxy: cannot listen on [{address[0]}%"
                         f"{listen_v6.get('interface')}]:{address[1]}: {exc}; "
                         "serving IPv4 only\n")
        return v4, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stratus metadata proxy (run by the agent)")
    parser.add_argument("--config", required=True, help="JSON settings file (mode 0600)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        conf = json.load(fh)
    secret = conf.get("shared_secret") or ""
    if not secret:
        sys.stderr.write("metadata-proxy: the shared secret is empty; refusing to start\n")
        return 2
    handler = make_handler(conf.get("network_id") or "", conf["upstream_url"], secret,
                           conf.get("subnets") or None, conf.get("slaac_prefixes") or None,
                           conf.get("hosts_file"))
    entered: list[str] = []
    server, server6 = bind_in_netns(conf.get("netns_path"), lambda: _servers(conf, handler),
                                    entered)
    server.daemon_threads = True
    if server6 is not None:
        server6.daemon_threads = True
        threading.Thread(target=server6.serve_forever, name="listen-v6", daemon=True).start()
    id_file = conf.get("netns_id_file")
    if id_file and entered:
        with open(id_file + ".tmp", "w") as fh:
            fh.write(entered[0])
        os.replace(id_file + ".tmp", id_file)
    pid_file = conf.get("pid_file")
    if pid_file:
        with open(pid_file + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
