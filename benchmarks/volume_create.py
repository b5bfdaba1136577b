"""Volume create from image: the storage agent's pool next to a plain ``qemu-img convert``.

Prints figures; asserts nothing. Builds a qcow2 image holding ``--data-mib`` MiB of
random bytes (nothing compressible, no sparse regions) in a ``--virtual-gib`` GiB
disk, then times, ``--runs`` times each (median printed):

- ``qemu-img convert -f qcow2 -O <format>`` of the image file into a new file (the
  floor: what any create-from-image must at least do);
- the pool's create from image (:meth:`stratus.agent.storage.pool.Pool.create_from_image`):
  the image data streamed in 1 MiB chunks into a ``.part`` download file (as it
  arrives from the image API), ``qemu-img info`` checks, ``qemu-img convert``,
  a grow to the volume size and the rename into place.

The image API itself is not in the loop (its transfer is measured by
benchmarks/image_transfer.py). Everything lives in a temporary directory, removed
at the end. Run from the repository root in the project's virtualenv:

    .venv/bin/python benchmarks/volume_create.py [--data-mib 256] [--format raw]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from stratus.agent.runner import Runner
from stratus.agent.storage.pool import Pool


def chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while data := fh.read(size):
            yield data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-mib", type=int, default=256)
    ap.add_argument("--virtual-gib", type=int, default=1)
    ap.add_argument("--format", choices=["raw", "qcow2"], default="raw")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the files go (default: $TMPDIR)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tvbench-", dir=args.dir))
    try:
        raw = work / "data.raw"
        with open(raw, "wb") as fh:
            for _ in range(args.data_mib):
                fh.write(os.urandom(1 << 20))
        image = work / "image.qcow2"
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                        str(image)], check=True)
        subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(image),
                        f"{args.virtual_gib}G"], check=True)
        raw.unlink()
        pool = Pool(work / "pool", "tvb", Runner(timeout=3600))
        plain, through_pool = [], []
        for i in range(args.runs):
            out = work / f"plain-{i}.{args.format}"
            t0 = time.perf_counter()
            subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", args.format,
                            str(image), str(out)], check=True)
            plain.append(time.perf_counter() - t0)
            out.unlink()
            vid = f"bench-{i}"
            t0 = time.perf_counter()
            pool.create_from_image(vid, args.format, args.virtual_gib, chunks(image))
            through_pool.append(time.perf_counter() - t0)
            pool.delete_volume(vid, args.format)
        a, b = statistics.median(plain), statistics.median(through_pool)
        size = image.stat().st_size / (1 << 20)
        print(f"image: qcow2, {size:.0f} MiB file, {args.data_mib} MiB of data, "
              f"{args.virtual_gib} GiB virtual; volume format {args.format}; "
              f"median of {args.runs} runs")
        print(f"qemu-img convert:            {a:7.3f} s")
        print(f"pool create_from_image:      {b:7.3f} s  (download copy + info + convert + "
              "grow + rename)")
        print(f"ratio pool / qemu-img:       {b / a:7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
