"""Image transfer benchmark: upload and download through stratus-image next to a plain cp.

Prints figures; asserts nothing. Starts a real stratus-identity and
stratus-image (one uvicorn worker, SQLite) in a temporary directory, once
over plain http and once over https (a self-signed certificate made here),
writes a file of random bytes (no sparse regions, nothing compressible),
then, ``--rounds`` times, alternately:

- ``cp`` of the file to the same disk, then ``sync`` of the copy (its fsync; not
  ``sync -f``, which would also wait for other processes' data): the floor a local
  copy gives (cp copies inside the kernel, with copy_file_range);
- ``dd bs=128K`` of the file to the same disk, then ``sync``: the same copy through a
  process's buffer (read, then write), which is what any copy over a socket pays at
  least, printed as a second anchor;
- an upload with ``curl -T`` (PUT /v2/images/{id}/file, streamed from the file with a
  Content-Length): receive, md5 + sha512, fsync, inspection, rename into the
  content-addressed store;
- a download (GET .../file) into a file on the same disk over a plain socket, then ``sync``
  of it as after cp: over http the body is moved from the socket into the file by
  splice(2) through a pipe, inside the kernel, as ``cp`` copies with copy_file_range; over
  https (decrypted here) it is received into a reusable 256 KiB buffer and written from it.

The clients are lean (curl; splice or a buffer-reusing reader) so that the figures are the
service's, not a Python client's; the client side's CPU time is printed too. For each
operation it prints the median wall time, MB/s, the ratio against the median cp of the
same rounds, and the CPU seconds the service's worker process and the client used;
then the worker's peak resident memory (VmHWM) before and after, which shows that
image data is never held in memory, and the load average during the runs (the machine
may be shared: ratios between alternating runs mean more than absolute figures).
Everything it starts is stopped by pid and its directory removed; every transfer has a
timeout. Needs curl, openssl and qemu-img (``make test-deps``). Run from the repository
root, in the project's virtualenv (`make venv`: .venv with ``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/image_transfer.py [--size-mib 1024] [--rounds 3]
        [--schemes http,https] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import os
import resource
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import BIN, IdentityServer, ImageServer, wait_http

CHUNK = 1 << 20
# The download's buffer: small enough to stay in the CPU's cache between the receive and
# the write (a 1 MiB one cost several times the CPU time in one run).
RECV_BUFFER = 256 << 10
# The splice pipe's capacity, and what one splice(2) moves at most.
SPLICE_CHUNK = 256 << 10
TIMEOUT = 900
CLK_TCK = os.sysconf("SC_CLK_TCK")


class TlsImageServer(ImageServer):
    """stratus-image serving https with the certificate ``cert`` (and its key)."""

    cert: Path = Path()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.root / "image.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-image")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthcheck", verify=str(self.cert)).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.url} did not answer")


def worker_pid(parent: int) -> int:
    """The process serving requests: the hand-over parent's child (else the parent)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    return parent


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class Sample:
    wall: float
    server_cpu: float
    client_cpu: float


Step = list[str] | Callable[[], None]


def timed(steps: list[Step], server: int | None) -> Sample:
    """Run the steps (commands, or functions run in this thread) one after the other;
    wall time and CPU seconds of the server and of the client side (the commands, or
    this thread)."""
    server_before = cpu_seconds(server) if server else 0.0
    client_before = children_cpu() + time.thread_time()
    started = time.perf_counter()
    for step in steps:
        if callable(step):
            step()
        else:
            subprocess.run(step, check=True, timeout=TIMEOUT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return Sample(wall, (cpu_seconds(server) - server_before) if server else 0.0,
                  children_cpu() + time.thread_time() - client_before)


def download(url: str, token: str, target: Path, cafile: Path | None) -> Callable[[], None]:
    """A GET of ``url`` into ``target`` over a plain socket: the body received into one
    reusable buffer and written from it, as cp does (curl -o used more CPU than the
    service spent sending, and http.client's readinto more still)."""

    def run() -> None:
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=str(cafile))
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
        try:
            sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         f"X-Auth-Token: {token}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                more = sock.recv(65536)
                if not more:
                    raise RuntimeError(f"GET {url}: connection closed in the headers")
                head += more
            head, body = head.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {url}: {head[:200]!r}")
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
                if parts.scheme == "https":
                    receive_copying(sock, fd)
                else:
                    receive_spliced(sock, fd)
            finally:
                os.close(fd)
        finally:
            sock.close()

    return run


def receive_copying(sock: socket.socket, fd: int) -> None:
    """The rest of the body into ``fd`` through one reusable buffer (TLS: the data is
    decrypted in this process)."""
    buf = memoryview(bytearray(RECV_BUFFER))
    while count := sock.recv_into(buf):
        done = 0
        while done < count:
            done += os.write(fd, buf[done:count])


def receive_spliced(sock: socket.socket, fd: int) -> None:
    """The rest of the body into ``fd`` without copying it through this process: splice(2)
    moves it from the socket into a pipe and from the pipe into the file, as a plain
    ``cp`` copies inside the kernel (copy_file_range)."""
    # splice needs a blocking socket; the kernel's receive timeout keeps the transfer's
    # (a stalled sender makes splice fail with EAGAIN)
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", TIMEOUT, 0))
    pipe_r, pipe_w = os.pipe()
    try:
        fcntl.fcntl(pipe_w, fcntl.F_SETPIPE_SZ, SPLICE_CHUNK)
        while count := os.splice(sock.fileno(), pipe_w, SPLICE_CHUNK, flags=os.SPLICE_F_MOVE):
            while count:
                count -= os.splice(pipe_r, fd, count, flags=os.SPLICE_F_MOVE)
    finally:
        os.close(pipe_r)
        os.close(pipe_w)


def make_cert(work: Path) -> tuple[Path, Path]:
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def run_scheme(scheme: str, work: Path, source: Path, size: int, rounds: int,
               identity: IdentityServer, checksum: str) -> None:
    root = work / f"image-{scheme}"
    image: ImageServer
    curl = ["curl", "-sS", "--fail", "--max-time", str(TIMEOUT)]
    env = {"STRATUS_IMAGE__MAX_IMAGE_SIZE": str(size)}
    if scheme == "https":
        cert, key = make_cert(work)
        env.update({"STRATUS_IMAGE__TLS_CERT_FILE": str(cert),
                    "STRATUS_IMAGE__TLS_KEY_FILE": str(key)})
        tls_image = TlsImageServer(root, identity, extra_env=env)
        tls_image.cert = cert
        image = tls_image
        curl += ["--cacert", str(cert)]
        verify: str | bool = str(cert)
        cafile: Path | None = cert
    else:
        image = ImageServer(root, identity, extra_env=env)
        verify, cafile = True, None
    image.prepare()
    try:
        image.start()
        assert image.proc is not None
        server = worker_pid(image.proc.pid)
        token = identity.token()
        auth = ["-H", f"X-Auth-Token: {token}"]
        samples: dict[str, list[Sample]] = {"cp": [], "dd": [], "upload": [], "download": []}
        loads: list[float] = []
        copy, target = work / "copy.raw", work / "downloaded.raw"
        with httpx.Client(base_url=image.url, headers={"X-Auth-Token": token},
                          timeout=TIMEOUT, verify=verify) as client:
            client.get("/v2/images").raise_for_status()
            rss_idle = peak_rss_mib(server)
            for _ in range(rounds):
                loads.append(os.getloadavg()[0])
                samples["cp"].append(timed([["cp", str(source), str(copy)],
                                            ["sync", str(copy)]], None))
                copy.unlink()
                samples["dd"].append(timed([["dd", f"if={source}", f"of={copy}", "bs=128K",
                                             "status=none"], ["sync", str(copy)]], None))
                copy.unlink()
                created = client.post("/v2/images", json={
                    "name": "bench", "disk_format": "raw", "container_format": "bare"})
                created.raise_for_status()
                image_id = created.json()["id"]
                url = f"{image.url}/v2/images/{image_id}/file"
                samples["upload"].append(timed([[
                    *curl, *auth, "-H", "Content-Type: application/octet-stream",
                    "-H", "Expect:", "-T", str(source), url]], server))
                shown = client.get(f"/v2/images/{image_id}").json()
                samples["download"].append(timed([download(url, token, target, cafile),
                                                  ["sync", str(target)]], server))
                downloaded = file_md5(target)
                target.unlink()
                client.delete(f"/v2/images/{image_id}").raise_for_status()
                if not shown["checksum"] == downloaded == checksum:
                    print(f"CHECKSUM MISMATCH: source {checksum}, service "
                          f"{shown['checksum']}, downloaded {downloaded}")
        rss_end = peak_rss_mib(server)
    finally:
        image.stop()
    report(scheme, size, samples, loads, rss_idle, rss_end)


def report(scheme: str, size: int, samples: dict[str, list[Sample]], loads: list[float],
           rss_idle: float, rss_end: float) -> None:
    cp = statistics.median(s.wall for s in samples["cp"])
    print()
    print(f"{scheme}: {len(samples['cp'])} alternating rounds, load average (1 min) "
          f"{min(loads):.1f}-{max(loads):.1f}")
    print(f"{'operation':<26}{'median s':>9}{'min-max s':>13}{'MB/s':>7}{'/ cp':>7}"
          f"{'server CPU s':>14}{'client CPU s':>14}")
    for name, label in (("cp", "cp + sync (same disk)"), ("dd", "dd bs=128K + sync"),
                        ("upload", "upload (curl -T)"), ("download", "download + sync")):
        walls = [s.wall for s in samples[name]]
        wall = statistics.median(walls)
        server = statistics.median(s.server_cpu for s in samples[name])
        client = statistics.median(s.client_cpu for s in samples[name])
        print(f"{label:<26}{wall:>9.2f}{f'{min(walls):.2f}-{max(walls):.2f}':>13}"
              f"{size / wall / 1e6:>7.0f}{cp / wall:>7.2f}"
              f"{server if name not in ('cp', 'dd') else float('nan'):>14.2f}{client:>14.2f}")
    print(f"stratus-image worker peak RSS (VmHWM): {rss_idle:.1f} MiB after start and one "
          f"small request, {rss_end:.1f} MiB after every transfer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="image size (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--schemes", default="http,https",
                        help="comma-separated: http, https (default both)")
    parser.add_argument("--dir", default=None, help="where to work (default: $TMPDIR)")
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    work = Path(tempfile.mkdtemp(prefix="zim-bench-image-", dir=args.dir))
    identity = None
    try:
        source = work / "image.raw"
        print(f"writing {args.size_mib} MiB of random data to {source} ...", flush=True)
        checksum = write_random_file(source, size)
        identity = IdentityServer(work / "identity", f"sqlite:///{work}/identity.sqlite")
        identity.prepare()
        identity.start()
        wait_http(f"{identity.url}/healthcheck")
        for scheme in args.schemes.split(","):
            run_scheme(scheme.strip(), work, source, size, args.rounds, identity, checksum)
    finally:
        if identity is not None:
            identity.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
