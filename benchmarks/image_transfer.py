"""Image transfer benchmark: upload and download through stratus-image next to a plain cp.

Prints figures; asserts nothing. Starts a real stratus-identity and
stratus-image (one uvicorn worker, SQLite) in a temporary directory, writes a
file of random bytes (no sparse regions, nothing compressible), then times:

- ``cp`` of the file to the same disk (the floor a local copy gives);
- an upload (PUT /v2/images/{id}/file, streamed from the file with a
  Content-Length): receive, md5 + sha512, fsync, inspection with qemu-img,
  rename into the content-addressed store;
- a download (GET .../file) streamed into a file on the same disk;

and reports the service's peak resident memory (VmHWM) before and after, to
show that image data is never held in memory. Everything it starts is stopped
by pid and its directory removed; every transfer has a timeout. Needs qemu-img
(``make test-deps``).
Run from the repository root, in the project's virtualenv (`make venv`: .venv with
``pip install -e '.[test]'``):

    .venv/bin/python benchmarks/image_transfer.py [--size-mib 1024] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import IdentityServer, ImageServer

CHUNK = 1 << 20
TIMEOUT = 900.0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="image size (default 1024)")
    parser.add_argument("--dir", default=None, help="where to work (default: $TMPDIR)")
    args = parser.parse_args()
    size = args.size_mib * CHUNK

    work = Path(tempfile.mkdtemp(prefix="stratus-bench-image-", dir=args.dir))
    identity = image = None
    try:
        source = work / "image.raw"
        print(f"writing {args.size_mib} MiB of random data to {source} ...", flush=True)
        checksum = write_random_file(source, size)

        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(work / "copy.raw")], check=True)
        subprocess.run(["sync", "-f", str(work / "copy.raw")], check=True)
        cp_seconds = time.perf_counter() - started
        (work / "copy.raw").unlink()

        identity = IdentityServer(work / "identity", f"sqlite:///{work}/identity.sqlite")
        identity.prepare()
        identity.start()
        image = ImageServer(work / "image", identity,
                            extra_env={"STRATUS_IMAGE__MAX_IMAGE_SIZE": str(size)})
        image.prepare()
        image.start()
        assert image.proc is not None
        headers = {"X-Auth-Token": identity.token()}
        with httpx.Client(base_url=image.url, headers=headers, timeout=TIMEOUT) as client:
            created = client.post("/v2/images", json={
                "name": "bench", "disk_format": "raw", "container_format": "bare"})
            created.raise_for_status()
            image_id = created.json()["id"]
            rss_idle = peak_rss_mib(image.proc.pid)

            started = time.perf_counter()
            with open(source, "rb") as fh:
                resp = client.put(f"/v2/images/{image_id}/file", content=fh,
                                  headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(size)})
            up_seconds = time.perf_counter() - started
            resp.raise_for_status()
            rss_upload = peak_rss_mib(image.proc.pid)
            shown = client.get(f"/v2/images/{image_id}").json()

            target = work / "downloaded.raw"
            digest = hashlib.md5(usedforsecurity=False)
            started = time.perf_counter()
            with client.stream("GET", f"/v2/images/{image_id}/file") as stream, \
                    open(target, "wb") as out:
                stream.raise_for_status()
                for part in stream.iter_bytes(CHUNK):
                    digest.update(part)
                    out.write(part)
                out.flush()
                os.fsync(out.fileno())
            down_seconds = time.perf_counter() - started
            rss_download = peak_rss_mib(image.proc.pid)

        print()
        print(f"image: {args.size_mib} MiB of random bytes, disk_format raw, on {work}")
        print(f"{'operation':<34}{'seconds':>9}{'MB/s':>9}")
        print(f"{'cp + sync (same disk)':<34}{cp_seconds:>9.2f}{mb_per_s(size, cp_seconds):>9.0f}")
        print(f"{'upload (PUT .../file)':<34}{up_seconds:>9.2f}"
              f"{mb_per_s(size, up_seconds):>9.0f}")
        print(f"{'download (GET .../file)':<34}{down_seconds:>9.2f}"
              f"{mb_per_s(size, down_seconds):>9.0f}")
        print()
        print("stratus-image peak RSS (VmHWM):")
        print(f"  after start and one small request   {rss_idle:7.1f} MiB")
        print(f"  after the upload                    {rss_upload:7.1f} MiB")
        print(f"  after the download                  {rss_download:7.1f} MiB")
        print()
        print(f"checksums: source {checksum}, service {shown['checksum']}, "
              f"downloaded {digest.hexdigest()}")
    finally:
        if image is not None:
            image.stop()
        if identity is not None:
            identity.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
