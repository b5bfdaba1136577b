"""The move of an existing deploy's listings from the central listing database (the
tables of :mod:`stratus.object.models`) to the storage devices' container and account
databases (:mod:`stratus.object.ringdb`), once.

stratus-object runs :func:`migrate_listings` when it starts (and the updater pass of
stratus-object-replicator retries it while it has not succeeded): every account's
metadata, every container (metadata, creation time) and every object row is merged into
the databases on the ring, with the timestamps the rows had -- so a second run, or a run
on another controller at the same time, changes nothing (newest wins). Once every write
reached every replica a row in ``listing_move`` records it, and the central tables are
no longer read. A run that could not reach every replica records nothing and is retried.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.object.diskfile import timestamp
from stratus.object.models import Account, Container, ListingMove, ObjectRow

if TYPE_CHECKING:
    from stratus.object.core import ObjectService

LOG = logging.getLogger("stratus.object.migrate")
BATCH = 500


def moved(core: ObjectService) -> bool:
    """Whether the listings were moved already."""
    return bool(core.db.transaction(lambda s: s.get(ListingMove, 1) is not None))


def migrate_listings(core: ObjectService) -> dict[str, int] | None:
    """Copy the central listings to the devices' databases unless done before; what was
    copied (None: done before). OSError/ServiceUnavailable when a replica is down:
    nothing is recorded then, and the next run copies again."""
    if moved(core):
        return None
    ring = core.listings
    accounts: list[tuple[str, dict[str, Any], str]] = core.db.transaction(
        lambda s: [(a.name, dict(a.meta), a.put_timestamp) for a in s.scalars(
            sa.select(Account).order_by(Account.name))])
    containers: list[tuple[str, str, dict[str, Any], str, str, str]] = core.db.transaction(
        lambda s: [(c.account, c.name, dict(c.meta), c.policy, c.created_at,
                    c.put_timestamp) for c in s.scalars(
            sa.select(Container).order_by(Container.account, Container.name))])
    incomplete = 0
    for name, meta, put_ts in accounts:
        t = ring.target(name)
        _answers, failed = ring._write(t, "merge_info", {"info": {
            "account": name, "put_timestamp": put_ts, "created_at": put_ts,
            "meta": {k: [str(v), put_ts] for k, v in meta.items()}}, "create": True})
        incomplete += failed
    objects = 0
    for account, name, meta, policy, created, put_ts in containers:
        t = ring.target(account, name)
        _answers, failed = ring._write(t, "merge_info", {"info": {
            "account": account, "container": name, "put_timestamp": put_ts,
            "created_at": created, "policy": policy,
            "meta": {k: [str(v), put_ts] for k, v in meta.items()}}, "create": True})
        incomplete += failed
        after = ""
        while True:
            rows = core.db.transaction(partial(_object_rows, account=account,
                                               container=name, after=after))
            if not rows:
                break
            answers, failed = ring._write(t, "merge_rows", {"rows": rows})
            incomplete += failed
            objects += len(rows)
            after = rows[-1]["name"]
        # the container's row in its account, with its counts
        answers, failed = ring._write(t, "info", {})
        incomplete += failed
        now = timestamp()
        incomplete += not ring._account_row(account, {
            "name": name, "timestamp": now, "put_timestamp": put_ts, "stats_timestamp": now,
            "object_count": answers[0]["objects"] if answers else 0,
            "bytes_used": answers[0]["bytes"] if answers else 0})
    if incomplete:
        raise OSError(f"the listings' move reached {incomplete} replica(s) less than all; "
                      "it is retried")

    def record(s: Session) -> None:
        if s.get(ListingMove, 1) is None:
            s.add(ListingMove(id=1, done_at=timestamp(), containers=len(containers),
                              objects=objects))
    core.db.transaction(record)
    LOG.info("listings moved to the storage devices: %d accounts, %d containers, "
             "%d objects", len(accounts), len(containers), objects)
    return {"accounts": len(accounts), "containers": len(containers), "objects": objects}


def _object_rows(s: Session, account: str, container: str, after: str
                 ) -> list[dict[str, Any]]:
    col = ObjectRow.name
    if s.get_bind().dialect.name == "postgresql":
        col = col.collate("C")  # type: ignore[assignment]
    q = (sa.select(ObjectRow).where(ObjectRow.account == account,
                                    ObjectRow.container == container, col > after)
         .order_by(col).limit(BATCH))
    return [{"name": r.name, "timestamp": r.timestamp, "meta_timestamp": r.timestamp,
             "size": r.size, "etag": r.etag, "content_type": r.content_type,
             "delete_at": r.delete_at, "deleted": 0} for r in s.scalars(q)]


def try_migrate(core: ObjectService) -> None:
    """:func:`migrate_listings`, logging instead of raising (a start, an updater pass)."""
    try:
        migrate_listings(core)
    except Exception as exc:  # retried at the next pass; never fatal
        LOG.warning("moving the listings to the storage devices: %s", exc)
