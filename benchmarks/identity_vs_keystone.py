"""Token validation over HTTP: stratus-identity next to Keystone, on this machine, in one run.

Keystone from PyPI (``pip install keystone uwsgi`` into a throwaway virtualenv under /tmp,
made here when ``--keystone-venv`` does not exist yet; kept for the next run) under uWSGI,
one process, one thread, SQLite, Fernet tokens; measured twice: with its in-memory cache
(``[cache] backend = dogpile.cache.memory``) and with the cache disabled. Stratus identity as
deployed (one uvicorn worker, SQLite, Fernet). Each validates the same kind of token
(``GET /v3/auth/tokens`` with the admin's project token as both X-Auth-Token and
X-Subject-Token, ``?nocatalog``), from 1 and 4 client processes, with a new connection per
request and over keep-alive connections; prints requests per second, p50 and p99 and the
ratio Stratus / Keystone-with-cache (the issue's target: at least 3x), and for each cell
the server's CPU time per request (its process tree, from /proc), the clients' CPU time
per request (a lean socket client, the same for both) and the load average:
on a shared machine the CPU time moves far less than the wall-clock figures. When Keystone
cannot be installed or started (or with ``--no-keystone``), it says so and prints the
Stratus figures alone.

Figures, not pass/fail; the two cores are shared, so the client processes compete with the
server (the same for both). Everything it starts is stopped by pid; its directories under
/tmp (``zbn-ks-*``, ``stratus-bench-*``) are removed. Run from the repository root:

    .venv/bin/python benchmarks/identity_vs_keystone.py [--seconds 5] \
        [--keystone-venv /tmp/zbn-keystone-venv] [--no-keystone]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers import ADMIN_PASSWORD, IdentityServer  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from metadata_requests import tree_cpu  # noqa: E402

KEYSTONE_PASSWORD = "zbn-keystone-admin"
PATH = "/v3/auth/tokens?nocatalog"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def issue_token(port: int, password: str) -> str:
    body = json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v3/auth/tokens", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"token issue on port {port}: HTTP {resp.status}")
    return str(resp.getheader("X-Subject-Token"))


def client(job: tuple[int, str, float, bool, bool]) -> tuple[list[float], float]:
    """One client process: validations until the deadline; their latencies in seconds
    and the CPU seconds the client used for them. A lean HTTP/1.1 client (the request's
    bytes made once, the answer read by its Content-Length), the same for both servers:
    http.client (``--http-client``, what this benchmark used before) costs more CPU per
    request than Stratus's server, and four of them with the server on two cores
    measured the clients."""
    port, token, until, keepalive, httplib = job
    if httplib:
        return client_httplib(port, token, until, keepalive)
    request = (f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Auth-Token: {token}\r\n"
               f"X-Subject-Token: {token}\r\n"
               + ("" if keepalive else "Connection: close\r\n") + "\r\n").encode()
    lat: list[float] = []
    sock: socket.socket | None = None
    buf = b""
    cpu = time.process_time()
    while time.time() < until and len(lat) < 200000:
        t0 = time.perf_counter()
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = b""
        sock.sendall(request)
        status, close, buf = _read_answer(sock, buf)
        if status != 200:
            raise RuntimeError(f"validation: HTTP {status}")
        if not keepalive or close:
            sock.close()
            sock = None
        lat.append(time.perf_counter() - t0)
    if sock is not None:
        sock.close()
    return lat, time.process_time() - cpu


def client_httplib(port: int, token: str, until: float, keepalive: bool
                   ) -> tuple[list[float], float]:
    """:func:`client` with the standard library's http.client."""
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    lat: list[float] = []
    conn: http.client.HTTPConnection | None = None
    cpu = time.process_time()
    while time.time() < until and len(lat) < 200000:
        t0 = time.perf_counter()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", PATH, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"validation: HTTP {resp.status}")
        if not keepalive or resp.will_close:
            conn.close()
            conn = None
        lat.append(time.perf_counter() - t0)
    if conn is not None:
        conn.close()
    return lat, time.process_time() - cpu


def _read_answer(sock: socket.socket, buf: bytes) -> tuple[int, bool, bytes]:
    """(status, whether the server closes the connection, the bytes after the answer)."""
    while b"\r\n\r\n" not in buf:
        more = sock.recv(65536)
        if not more:
            raise RuntimeError("the server closed the connection mid-answer")
        buf += more
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, lines[0].startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            raise RuntimeError("the server closed the connection mid-answer")
        rest += more
    return status, close, rest[length:]


def measure(port: int, token: str, clients: int, seconds: float, keepalive: bool,
            pid: int | None = None, httplib: bool = False
            ) -> tuple[float, float, float, float, float]:
    """(requests per second, p50 ms, p99 ms, the server's CPU microseconds per request:
    0 without ``pid``, the clients' CPU microseconds per request) for `clients`
    processes over `seconds`."""
    client((port, token, time.time() + 0.3, keepalive, httplib))  # warm the caches
    cpu = tree_cpu(pid) if pid else 0.0
    start = time.time() + 0.2
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(client,
                           [(port, token, start + seconds, keepalive, httplib)] * clients)
    used = tree_cpu(pid) - cpu if pid else 0.0
    lat = sorted(x for r, _ in results for x in r)
    clients_cpu = sum(c for _, c in results)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    n = max(len(lat), 1)
    return (len(lat) / seconds, statistics.median(lat) * 1000, p99 * 1000,
            used / n * 1e6, clients_cpu / n * 1e6)


class Keystone:
    """Keystone under uWSGI in a directory of its own; cache on or off."""

    def __init__(self, venv: Path, cache: bool) -> None:
        self.venv = venv
        self.cache = cache
        self.dir = Path(tempfile.mkdtemp(prefix="zbn-ks-", dir="/tmp"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def conf(self) -> Path:
        d = self.dir
        cache = ("[cache]\nenabled = true\nbackend = dogpile.cache.memory\n" if self.cache
                 else "[cache]\nenabled = false\n")
        path = d / "keystone.conf"
        path.write_text(
            f"[DEFAULT]\ndebug = false\nlog_file = {d / 'keystone.log'}\n"
            f"[database]\nconnection = sqlite:///{d / 'keystone.db'}\n"
            "[token]\nprovider = fernet\n"
            f"[fernet_tokens]\nkey_repository = {d / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {d / 'fernet-receipts'}\n"
            f"[credential]\nkey_repository = {d / 'credential-keys'}\n" + cache)
        return path

    def manage(self, conf: Path, *args: str) -> None:
        subprocess.run([str(self.venv / "bin" / "keystone-manage"), "--config-file", str(conf),
                        *args], check=True, capture_output=True, timeout=300)

    def __enter__(self) -> Keystone:
        conf = self.conf()
        self.manage(conf, "db_sync")
        for what in ("fernet_setup", "credential_setup"):
            self.manage(conf, what, "--keystone-user", "root", "--keystone-group", "root")
        url = f"http://127.0.0.1:{self.port}/v3/"
        self.manage(conf, "bootstrap", "--bootstrap-password", KEYSTONE_PASSWORD,
                    "--bootstrap-admin-url", url, "--bootstrap-public-url", url,
                    "--bootstrap-internal-url", url, "--bootstrap-region-id", "RegionOne")
        log = open(self.dir / "uwsgi.log", "ab")  # closed below, the process keeps its copy
        self.proc = subprocess.Popen([
            str(self.venv / "bin" / "uwsgi"), "--http11-socket", f"127.0.0.1:{self.port}",
            "--module", "keystone.wsgi.api:application", "--virtualenv", str(self.venv),
            "--env", f"OS_KEYSTONE_CONFIG_FILES={conf}", "--processes", "1", "--threads", "1",
            "--master", "--need-app", "--disable-logging", "--die-on-term",
            "--buffer-size", "65535"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 120
        while True:
            try:
                self.token = issue_token(self.port, KEYSTONE_PASSWORD)
                return self
            except (OSError, RuntimeError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.dir / "uwsgi.log").read_text(errors="replace")[-2000:]
                    self.__exit__()
                    raise RuntimeError(f"Keystone did not start:\n{tail}") from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def ensure_keystone(venv: Path) -> str | None:
    """None when the venv has keystone and uwsgi, else why it could not be made."""
    if (venv / "bin" / "uwsgi").exists() and (venv / "bin" / "keystone-manage").exists():
        return None
    print(f"installing Keystone and uWSGI from PyPI into {venv} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "keystone", "uwsgi"],
                              capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not make the virtualenv: {exc}"
    if done.returncode != 0:
        return f"pip install keystone uwsgi failed: {done.stderr.strip()[-1000:]}"
    return None


def run_all(label: str, port: int, token: str, seconds: float,
            table: dict[tuple[str, bool, int], tuple[float, float, float]],
            pid: int | None = None, httplib: bool = False, keepalive_only: bool = False
            ) -> None:
    for keepalive in (True,) if keepalive_only else (False, True):
        for clients in (1, 4):
            rps, p50, p99, used, theirs = measure(port, token, clients, seconds, keepalive,
                                                  pid, httplib)
            table[(label, keepalive, clients)] = (rps, p50, p99)
            conn = "keep-alive" if keepalive else "new connection"
            print(f"  {label:<22} {conn:<15} {clients} client(s)  {rps:8.1f} req/s"
                  f"  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  server CPU {used:5.0f} us/request"
                  f"  clients' CPU {theirs:4.0f} us/request"
                  f"  load average {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--keystone-venv", type=Path, default=Path("/tmp/zbn-keystone-venv"))
    parser.add_argument("--no-keystone", action="store_true",
                        help="measure Stratus alone (Keystone's figures: docs/performance.md)")
    parser.add_argument("--http-client", action="store_true",
                        help="clients with http.client (as before) instead of the lean one")
    parser.add_argument("--keep-alive-only", action="store_true",
                        help="only the keep-alive cells")
    args = parser.parse_args()
    table: dict[tuple[str, bool, int], tuple[float, float, float]] = {}

    print("Token validation, GET /v3/auth/tokens over HTTP")
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        srv = IdentityServer(Path(tmp), f"sqlite:///{tmp}/identity.sqlite")
        srv.prepare()
        srv.start()
        try:
            assert srv.proc is not None
            run_all("stratus", srv.port, issue_token(srv.port, ADMIN_PASSWORD), args.seconds,
                    table, srv.proc.pid, args.http_client, args.keep_alive_only)
        finally:
            srv.stop()

    why = "--no-keystone" if args.no_keystone else ensure_keystone(args.keystone_venv)
    if why is None:
        for cache in (True, False):
            label = "keystone cached" if cache else "keystone no cache"
            try:
                with Keystone(args.keystone_venv, cache) as ks:
                    assert ks.proc is not None
                    run_all(label, ks.port, ks.token, args.seconds, table, ks.proc.pid,
                            args.http_client, args.keep_alive_only)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"  {label}: Keystone could not run here: {exc}")
    else:
        print(f"  Keystone not measured: {why}")

    print("\nStratus / Keystone with its cache (target: at least 3x)")
    for keepalive in (False, True):
        for clients in (1, 4):
            ours = table.get(("stratus", keepalive, clients))
            theirs = table.get(("keystone cached", keepalive, clients))
            if ours and theirs:
                conn = "keep-alive" if keepalive else "new connection"
                print(f"  {conn:<15} {clients} client(s)  {ours[0] / theirs[0]:5.2f}x req/s,"
                      f"  p50 {theirs[1] / ours[1]:5.2f}x lower")


if __name__ == "__main__":
    main()
