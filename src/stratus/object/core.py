"""The object service layer: ``ObjectService`` holds the listings (:class:`RingListings`:
the container and account databases on the storage devices), the replicated store
(:class:`ObjectStore`) and the settings, and does the object operations that touch both
(a PUT is stored on a quorum of replicas first, then listed; a DELETE writes tombstones
first, then unlists).

A process killed between the two steps, or a container database replica that is down,
leaves a pending record on a device (:mod:`stratus.object.pending`) from which
stratus-object-replicator's next pass sets the listing right; the expirer and the
replicator never bring a deleted object back because the tombstone is newer. The central
listing database (:class:`Listings`) is only read once, to move an existing deploy's
listings to the devices (:mod:`stratus.object.migrate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from stratus.common.config import Config
from stratus.common.crashpoints import crash_point
from stratus.common.db import Database
from stratus.common.errors import NotFound
from stratus.common.tls import Tls
from stratus.object.diskfile import ObjectFile, timestamp
from stratus.object.listings import Listings
from stratus.object.pending import pending
from stratus.object.ringdb import RingListings
from stratus.object.store import ObjectStore, PutSession, Remote, RingHolder

SECTION = "object"


@dataclass
class Settings:
    ring_file: str
    max_file_size: int = 5368709122
    listing_limit: int = 10000
    public_url: str = ""
    spool_dir: str = ""
    remote: Remote | None = None

    @classmethod
    def from_config(cls, config: Config, here: tuple[str, int] | None = None) -> Settings:
        """``here``: this host's object server (the consistency processes) -- its
        devices are reached on the local disks, the others over HTTP."""
        srv = "object_server"
        remote = Remote(secret=config.get(srv, "secret"),
                        scheme="https" if Tls.from_config(config, srv).enabled else "http",
                        timeout=float(config.get_int(srv, "timeout", minimum=1)), here=here)
        return cls(ring_file=config.get(SECTION, "ring_file"),
                   max_file_size=config.get_int(SECTION, "max_file_size", minimum=1),
                   listing_limit=config.get_int(SECTION, "container_listing_limit",
                                                minimum=1),
                   public_url=config.get(SECTION, "public_url"),
                   spool_dir=config.get(SECTION, "spool_dir"), remote=remote)


class ObjectService:
    """The root of the service layer."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.sql_listings = Listings(db)  # the old central tables: read by the migration
        self.store = ObjectStore(RingHolder(settings.ring_file, settings.remote),
                                 settings.spool_dir)
        self.listings = RingListings(self.store.rings)

    # objects ------------------------------------------------------------------------
    def begin_put(self, account: str, container: str, name: str) -> PutSession:
        """Open one writer per replica (404 when the container does not exist)."""
        self.listings.container(account, container)
        return self.store.begin_put(account, container, name)

    def finish_put(self, session: PutSession, account: str, container: str, name: str,
                   metadata: dict[str, Any], ts: str | None = None) -> str:
        """Rename the replicas into place (a quorum), then list the object; the timestamp."""
        ts = ts or timestamp()
        metadata = {**metadata, "name": f"/{account}/{container}/{name}",
                    "size": session.size, "etag": session.etag, "timestamp": ts}
        large = metadata.get("slo") or {}
        where = self.store.pending_device([w.device for w in session.writers])
        with pending(where, account, container, name) as record:
            self.store.commit_put(session, ts, metadata)
            crash_point("object.put.after_store")
            record.keep = not self.listings.record_object(
                account, container, name, large.get("size", session.size),
                large.get("etag", session.etag), metadata.get("content_type", ""), ts,
                metadata.get("delete_at"))
        return ts

    def read(self, account: str, container: str, name: str) -> ObjectFile:
        """The object's newest data; 404 when missing, deleted or expired."""
        f = self.store.read(account, container, name)
        if f is None or f.kind != "data":
            raise NotFound("The resource could not be found.")
        delete_at = f.metadata.get("delete_at")
        if delete_at is not None and int(delete_at) <= time.time():
            raise NotFound("The resource could not be found.")
        return f

    def delete(self, account: str, container: str, name: str) -> None:
        f = self.store.read(account, container, name)
        if f is not None and f.kind == "data" and f.metadata.get("delete_at") is not None \
                and int(f.metadata["delete_at"]) <= time.time():
            # expired but not yet removed by the expirer: remove it now (still a 404), so
            # the container can be deleted right after
            gone = timestamp()
            self.store.delete(account, container, name, gone)
            self.listings.forget_object(account, container, name, gone)
            raise NotFound("The resource could not be found.")
        self.read(account, container, name)
        ts = timestamp()
        with pending(self.store.pending_device(
                self.store.locate(account, container, name).devices), account, container,
                name) as record:
            self.store.delete(account, container, name, ts)
            crash_point("object.delete.after_store")
            record.keep = not self.listings.forget_object(account, container, name, ts)

    def post(self, account: str, container: str, name: str, update: dict[str, Any]) -> None:
        current = self.read(account, container, name)
        meta_ts = timestamp()
        if not self.store.post(account, container, name, meta_ts, update):
            raise NotFound("The resource could not be found.")
        md = current.metadata
        large = md.get("slo") or {}
        self.listings.update_object(account, container, name,
                                    update.get("content_type", md.get("content_type", "")),
                                    update.get("delete_at"), ts=current.timestamp,
                                    size=large.get("size", md.get("size", 0)),
                                    etag=large.get("etag", md.get("etag", "")),
                                    meta_ts=meta_ts)

    def expire(self, now: float | None = None) -> int:
        """Delete the objects whose X-Delete-At has passed (the expirer); how many."""
        done = 0
        for account, container, name, ts in self.listings.expired(int(now or time.time())):
            f = self.store.read(account, container, name)
            if f is not None and f.kind == "data" and f.timestamp > ts:
                continue  # replaced since; its new row says when it expires
            gone = timestamp()
            self.store.delete(account, container, name, gone)
            self.listings.forget_object(account, container, name, gone)
            done += 1
        return done
