"""Replication of the container and account databases (part of the replicator's pass).

For each database on a local device and each other primary of its partition: compare
the two digests (info and rows); where they differ, send the info (timestamps and
metadata: the peer merges, newest wins) and the rows changed since the point that peer
last acknowledged (:meth:`Db.rows_since`, tombstones included), then record the new
point. When the digests still differ (the peer lost its copy, or was restored from an
older one) every row is sent once more. A peer without the database gets it whole: it
is made there marked as being filled (reads skip it, :func:`stratus.object.dbs.call`)
and the mark is removed once every row of a complete copy reached it (a pass that was
interrupted goes on from the last acknowledged point). Only the replicator makes a
database on a peer that lacks it: the proxy's writes never do, except for a new
container or account (:mod:`stratus.object.ringdb`).
A database on a device that is no longer one of its primaries (a ring change) is pushed
to the primaries and removed once every one of them has it. Tombstone rows older than
the reclaim age are dropped.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from typing import Any

from stratus.contracts.object import Ring
from stratus.object import dbs
from stratus.object.dbapi import db_call
from stratus.object.diskfile import Device
from stratus.object.store import AnyDevice

LOG = logging.getLogger("stratus.object.dbreplicate")


def replicate_dbs(ring: Ring, devices: dict[int, AnyDevice]) -> tuple[int, list[str]]:
    """One pass over the databases of the local devices: (rows pushed, errors)."""
    pushed = 0
    errors: list[str] = []
    for dev in devices.values():
        if not isinstance(dev, Device) or not dev.available():
            continue
        for kind in dbs.KINDS:
            for part, h, db in list(dbs.local_dbs(dev.path, kind)):
                if part >= ring.partitions:
                    continue
                primaries = [devices[d.id] for d in ring.primaries(part)]
                try:
                    db.reclaim()
                    n, complete = _push(dev, db, kind, part, h, primaries)
                    pushed += n
                except (OSError, sqlite3.Error, dbs.DbError) as exc:
                    errors.append(f"device {dev.id} {kind} {part}/{h}: {exc}")
                    LOG.warning("replication of %s database %s/%s from device %s: %s",
                                kind, part, h, dev.id, exc)
                    continue
                if complete and all(p.id != dev.id for p in primaries):
                    shutil.rmtree(db.path.parent, ignore_errors=True)  # a handoff's copy
    return pushed, errors


def _push(dev: Device, db: dbs.Db, kind: str, part: int, h: str,
          primaries: list[AnyDevice]) -> tuple[int, bool]:
    """Push one database to its other primaries: (rows sent, every peer in sync)."""
    pushed = 0
    complete = True
    info = db.info()
    digest = db.digest()
    whole = not db.filling()  # this copy may end a peer's fill
    raw_info = {k: info[k] for k in ("account", "container", "created_at", "put_timestamp",
                                     "delete_timestamp", "policy", "meta")}
    for peer in primaries:
        if peer.id == dev.id:
            continue
        key = f"{peer.id}"
        try:
            theirs: dict[str, Any] | None = db_call(peer, kind, part, h, "digest")
        except dbs.DbMissing:
            theirs = None
        except OSError:
            complete = False
            continue
        if theirs is None or theirs["digest"] != digest:
            db_call(peer, kind, part, h, "merge_info",
                    {"info": raw_info, "create": True, "filling": True})
            start = db.sync_point(key) if theirs is not None else 0
            pushed += _send_rows(db, peer, kind, part, h, start, key)
            if db_call(peer, kind, part, h, "digest")["digest"] != digest and start:
                pushed += _send_rows(db, peer, kind, part, h, 0, key)
        if whole and (theirs is None or theirs.get("filling")):
            db_call(peer, kind, part, h, "filled")
    return pushed, complete


def _send_rows(db: dbs.Db, peer: AnyDevice, kind: str, part: int, h: str, start: int,
               key: str) -> int:
    sent = 0
    point = start
    while True:
        rows = db.rows_since(point)
        if not rows:
            break
        point = rows[-1]["seq"]
        db_call(peer, kind, part, h, "merge_rows",
                {"rows": [{k: v for k, v in r.items() if k != "seq"} for r in rows]})
        sent += len(rows)
        db.set_sync_point(key, point)
    return sent
