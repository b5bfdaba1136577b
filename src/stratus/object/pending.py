"""Listing updates a crash or a down replica may lose, kept on a device until they are
done (Swift's async pendings, in short).

A PUT or DELETE stores the object (or its tombstones) first and then updates the
container's databases (:mod:`stratus.object.ringdb`). Before the first step it leaves a
pending record in ``<device>/async_pending/`` (written to ``tmp``, fsynced, locked with
``flock``, renamed into place) and removes it after the second -- unless a replica of the
container's database did not take the update: then the record stays, and every updater
pass sends it again until all have it. A process killed in between leaves the record,
unlocked (the kernel drops a dead process's locks); :func:`update_listings` (a pass of
``stratus-object-replicator``) then sets the listing rows from the object's newest state
on the replicas and removes the record. A record still locked belongs to a request in
progress and is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from stratus.common.errors import NotFound
from stratus.object.diskfile import Device

if TYPE_CHECKING:
    from stratus.object.core import ObjectService

LOG = logging.getLogger("stratus.object.pending")
PENDING_DIR = "async_pending"


class Record:
    """The block's handle: set ``keep`` when the listing update did not reach every
    replica of the container's database (the updater sends it again)."""

    keep = False


@contextmanager
def pending(dev: Device, account: str, container: str, name: str) -> Iterator[Record]:
    """A locked pending record on ``dev`` for the block's duration; left behind (to be
    reconciled) when the block raises, the process dies in it or it sets ``keep``."""
    where = dev.path / PENDING_DIR
    where.mkdir(parents=True, exist_ok=True)
    dev.tmp.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dev.tmp, suffix=".pending")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # locked before anyone can see it
        os.write(fd, json.dumps({"account": account, "container": container,
                                 "name": name}).encode())
        os.fsync(fd)
        final = where / os.path.basename(tmp).replace(".pending", ".json")
        os.replace(tmp, final)
        dir_fd = os.open(where, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        record = Record()
        yield record
        if not record.keep:
            final.unlink(missing_ok=True)
    finally:
        os.close(fd)


def reconcile(core: ObjectService, account: str, container: str, name: str) -> bool:
    """The listing row of one object set from its newest state on the replicas; whether
    every replica of the container's database has it now."""
    f = core.store.read(account, container, name)
    if f is None:
        return True
    if f.kind == "tombstone":
        return bool(core.listings.forget_object(account, container, name, f.timestamp))
    core.listings.container(account, container, stats=False)  # NotFound: it is gone
    md = f.metadata
    large = md.get("slo") or {}
    done = core.listings.record_object(
        account, container, name, large.get("size", md.get("size", 0)),
        large.get("etag", md.get("etag", "")), md.get("content_type", ""), f.timestamp,
        md.get("delete_at"))
    if f.meta_timestamp:  # a later POST's content type and expiry
        done = core.listings.update_object(
            account, container, name, md.get("content_type", ""), md.get("delete_at"),
            ts=f.timestamp, size=large.get("size", md.get("size", 0)),
            etag=large.get("etag", md.get("etag", "")), meta_ts=f.meta_timestamp) and done
    return bool(done)


def update_listings(core: ObjectService) -> int:
    """Reconcile every unlocked pending record of the available devices; how many."""
    places = [d for d in core.store.local_devices() if d.available()]
    spool = core.store.spool_device()
    if spool is not None:
        places.append(spool)
    done = 0
    for dev in places:
        where = dev.path / PENDING_DIR
        for path in sorted(where.glob("*.json")) if where.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # its request finished meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a request in progress
                entry = json.loads(os.read(fd, 1 << 16) or b"{}")
                complete = True
                with contextlib.suppress(NotFound):  # the container is gone: no listing
                    complete = reconcile(core, entry["account"], entry["container"],
                                         entry["name"])
                if not complete:
                    continue  # a replica of the container's database is still down
                path.unlink(missing_ok=True)
                done += 1
            except (ValueError, KeyError) as exc:
                LOG.warning("unreadable pending record %s removed: %s", path, exc)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
    return done
