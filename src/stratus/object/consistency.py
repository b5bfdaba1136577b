"""The consistency processes of the object store: the replicator, the auditor and the
expirer, run by ``stratus-object-replicator`` (on storage hosts; ``--once`` for one pass).

- Replicator: for each partition a device holds, compare the partition's digest with
  each primary's; where they differ, compare object by object and copy the newer state
  (data, metadata or tombstone) to the peers that lack it. A handoff device pushes its
  partitions to the primaries and drops its copy once every primary has it.
- Auditor: re-read every object, check its md5 and size against its metadata, and
  move a bad one to quarantine (replication then restores a good copy); remove
  tombstones older than the reclaim age and abandoned temporary files.
- Expirer: delete the objects whose X-Delete-At has passed.
- Updater: the listing updates a killed stratus-object (or a container database
  replica that was down) left pending (:mod:`stratus.object.pending`); the move of the
  central listings to the devices' databases while it has not succeeded.
- The replicator also replicates the container and account databases
  (:mod:`stratus.object.dbreplicate`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from stratus.common.config import Config, ConfigError
from stratus.common.tls import use_ca_file
from stratus.object.core import SECTION, ObjectService
from stratus.object.dbreplicate import replicate_dbs
from stratus.object.diskfile import Device
from stratus.object.migrate import try_migrate
from stratus.object.pending import update_listings
from stratus.object.store import AnyDevice, RingHolder

LOG = logging.getLogger("stratus.object.consistency")
JOBS = ("replicator", "auditor", "expirer", "updater")
RECLAIM_AGE = 7 * 24 * 3600.0  # seconds a tombstone is kept (replicas down that long lose)


@dataclass
class PassReport:
    """What one pass did."""

    pushed: int = 0
    removed_handoffs: int = 0
    quarantined: int = 0
    checked: int = 0
    reclaimed: int = 0
    skipped_partitions: int = 0
    db_rows_pushed: int = 0
    errors: list[str] = field(default_factory=list)


def replicate(rings: RingHolder) -> PassReport:
    """One replication pass over every available device of the ring."""
    ring, devices = rings.get()
    report = PassReport()
    for dev in devices.values():
        if not isinstance(dev, Device) or not dev.available():
            continue  # another host's device: its own replicator pushes it
        for part in dev.partitions():
            if part >= ring.partitions:
                continue
            primaries = [devices[d.id] for d in ring.primaries(part)]
            try:
                _replicate_partition(dev, part, primaries, report)
            except OSError as exc:
                report.errors.append(f"device {dev.id} partition {part}: {exc}")
                LOG.warning("replication of partition %s from device %s: %s", part, dev.id,
                            exc)
    pushed, errors = replicate_dbs(ring, devices)  # the container and account databases
    report.db_rows_pushed += pushed
    report.errors += errors
    return report


def _replicate_partition(dev: Device, part: int, primaries: list[AnyDevice],
                         report: PassReport) -> None:
    local = dev.hashes(part)
    for h in local:  # files an older state left (a copy put back behind a tombstone)
        dev.cleanup(dev.object_dir(part, h))
    is_primary = any(p.id == dev.id for p in primaries)
    digest = dev.partition_digest(part)
    complete = True
    for peer in primaries:
        if peer.id == dev.id:
            continue
        if not peer.available():
            complete = False
            continue
        if is_primary and peer.partition_digest(part) == digest:
            report.skipped_partitions += 1
            continue
        remote = peer.hashes(part)
        for h, state in local.items():
            if remote.get(h, "") < state:
                peer.receive(part, h, dev.current_files(part, h))
                report.pushed += 1
    if not is_primary and complete:
        for h, state in local.items():
            if all(p.hashes(part).get(h, "") >= state for p in primaries):
                dev.remove(part, h)
                report.removed_handoffs += 1


def audit(rings: RingHolder, reclaim_age: float = RECLAIM_AGE) -> PassReport:
    """One auditor pass: every object's bytes against its md5 and size."""
    _ring, devices = rings.get()
    report = PassReport()
    now = time.time()
    for dev in devices.values():
        if not isinstance(dev, Device) or not dev.available():
            continue
        dev.sweep_tmp()
        for part in dev.partitions():
            base = dev.path / "objects" / str(part)
            for h in sorted(os.listdir(base)) if base.is_dir() else []:
                f = dev.read(part, h)
                if f is None:
                    continue
                if f.kind == "tombstone":
                    if now - float(f.timestamp) > reclaim_age:
                        dev.remove(part, h)
                        report.reclaimed += 1
                    continue
                report.checked += 1
                if not _intact(f.data_path, f.metadata):
                    where = dev.quarantine(part, h)
                    report.quarantined += 1
                    LOG.warning("quarantined %s (device %s): bytes do not match its "
                                "metadata; moved to %s", f.metadata.get("name", h), dev.id,
                                where)
    return report


def _intact(path: os.PathLike[str] | None, metadata: dict[str, object]) -> bool:
    if path is None:
        return False
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                md5.update(chunk)
                size += len(chunk)
    except OSError:
        return False
    return md5.hexdigest() == metadata.get("etag") and size == metadata.get("size")


def main(argv: list[str] | None = None) -> int:
    """stratus-object-replicator: the replicator, auditor and expirer loops."""
    from stratus.object.app import build_core

    parser = argparse.ArgumentParser(prog="stratus-object-replicator", description=__doc__)
    parser.add_argument("--config-file")
    parser.add_argument("--once", action="store_true", help="one pass of each, then exit")
    parser.add_argument("--jobs", help="comma-separated subset of replicator, auditor, "
                        "expirer, updater (default: [object] consistency_jobs)")
    args = parser.parse_args(argv)
    if args.config_file:
        os.environ["STRATUS_CONFIG_FILE"] = args.config_file
    try:
        config = Config.load()
        intervals = {name: config.get_int(SECTION, f"{name}_interval", minimum=1)
                     for name in ("replicator", "auditor", "expirer")}
        intervals["updater"] = intervals["replicator"]  # listings a crash left behind
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(process)d %(levelname)s %(name)s "
                                   "%(message)s")
        jobs = [j.strip() for j in (args.jobs or config.get(SECTION, "consistency_jobs"))
                .split(",") if j.strip()]
        unknown = sorted(set(jobs) - set(JOBS))
        if unknown:
            raise ConfigError(f"consistency jobs {unknown}: expected some of {JOBS}")
        use_ca_file(config.get(SECTION, "tls_ca_file"))  # the object servers' https
        here = (config.get("object_server", "bind_host"),
                config.get_int("object_server", "bind_port"))
        core = build_core(config, here)
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"stratus-object-replicator: {exc}\n")
        return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_loops(core, intervals, stop, once=args.once, only=jobs)
    core.db.dispose()
    return 0


def run_loops(core: ObjectService, intervals: dict[str, int], stop: threading.Event,
              once: bool = False, only: list[str] | None = None) -> None:
    """Run each pass (of ``only``, default all) when its interval has passed, until
    ``stop`` is set."""
    rings = core.store.rings
    jobs: dict[str, Callable[[], object]] = {
        "replicator": lambda: replicate(rings), "auditor": lambda: audit(rings),
        "expirer": core.expire, "updater": lambda: _updater(core)}
    jobs = {k: v for k, v in jobs.items() if only is None or k in only}
    due = dict.fromkeys(jobs, 0.0)
    while not stop.is_set():
        for name, job in jobs.items():
            if time.monotonic() < due[name]:
                continue
            try:
                result = job()
                LOG.info("%s pass: %s", name, result)
            except Exception:  # a missing ring or a database outage: the next pass retries
                LOG.exception("%s pass failed", name)
            due[name] = time.monotonic() + intervals[name]
        if once:
            return
        stop.wait(1.0)


def _updater(core: ObjectService) -> int:
    """The updater pass: the listings' move while it has not succeeded, then the
    pending listing updates."""
    try_migrate(core)
    return update_listings(core)
