"""The old central listing database's service layer: accounts, containers, object rows,
listings. Since the listings live in the storage devices' databases
(:mod:`stratus.object.ringdb`) it is only read once, by :mod:`stratus.object.migrate`, to
move an existing deploy's rows there (and by its tests to make such rows).

Every method runs in one :meth:`Database.transaction`. A listing walks the rows in
name order from ``marker`` (or backwards for ``reverse``), folds names that carry the
``delimiter`` after the ``prefix`` into one ``subdir`` entry, and stops at ``limit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from stratus.common.db import Database
from stratus.common.errors import Conflict, NotFound
from stratus.object.diskfile import timestamp
from stratus.object.models import Account, Container, ObjectRow

POLICY = "Policy-0"
BATCH = 1000


@dataclass
class ListParams:
    """The query of a listing (validated by the handler)."""

    limit: int
    marker: str = ""
    end_marker: str = ""
    prefix: str = ""
    delimiter: str = ""
    reverse: bool = False


@dataclass
class Stats:
    count: int
    bytes: int


def _apply_meta(current: dict[str, Any], updates: dict[str, str | None]) -> dict[str, Any]:
    """Set the non-empty values, remove the keys whose value is None or empty."""
    merged = dict(current)
    for key, value in updates.items():
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    return merged


class Listings:
    """Accounts, containers and their listings."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # accounts -----------------------------------------------------------------------
    def _ensure_account(self, s: Session, account: str) -> Account:
        row = s.get(Account, account)
        if row is None:
            now = timestamp()
            row = Account(name=account, meta={}, created_at=now, put_timestamp=now)
            s.add(row)
            s.flush()
        return row

    def account(self, account: str) -> dict[str, Any]:
        """An account's metadata and counts (zeros for an account never written)."""
        def work(s: Session) -> dict[str, Any]:
            row = s.get(Account, account)
            containers = s.scalar(sa.select(sa.func.count()).select_from(Container)
                                  .where(Container.account == account)) or 0
            count, size = s.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(ObjectRow.size), 0))
                .where(ObjectRow.account == account)).one()
            return {"meta": dict(row.meta) if row else {},
                    "created_at": row.created_at if row else timestamp(),
                    "containers": int(containers), "objects": int(count), "bytes": int(size)}
        return self.db.transaction(work)

    def update_account(self, account: str, updates: dict[str, str | None]) -> None:
        def work(s: Session) -> None:
            row = self._ensure_account(s, account)
            row.meta = _apply_meta(row.meta, updates)
            row.put_timestamp = timestamp()
        self.db.transaction(work)

    # containers ---------------------------------------------------------------------
    def put_container(self, account: str, name: str, updates: dict[str, str | None],
                      policy: str = POLICY) -> bool:
        """Create (True) or update the metadata of (False) a container."""
        def work(s: Session) -> bool:
            self._ensure_account(s, account)
            row = s.get(Container, (account, name))
            now = timestamp()
            if row is None:
                s.add(Container(account=account, name=name, meta=_apply_meta({}, updates),
                                policy=policy, created_at=now, put_timestamp=now))
                return True
            row.meta = _apply_meta(row.meta, updates)
            row.put_timestamp = now
            return False
        return self.db.transaction(work)

    def account_meta(self, account: str) -> dict[str, Any]:
        """An account's metadata alone (no counting)."""
        def work(s: Session) -> dict[str, Any]:
            row = s.get(Account, account)
            return dict(row.meta) if row else {}
        return self.db.transaction(work)

    def container(self, account: str, name: str, stats: bool = True) -> dict[str, Any]:
        """A container's metadata, policy and (with ``stats``) counts; 404 when there is
        none."""
        def work(s: Session) -> dict[str, Any]:
            row = s.get(Container, (account, name))
            if row is None:
                raise NotFound("The container could not be found.")
            if not stats:
                return {"meta": dict(row.meta), "policy": row.policy,
                        "created_at": row.created_at, "objects": None, "bytes": None}
            count, size = s.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(ObjectRow.size), 0))
                .where(ObjectRow.account == account, ObjectRow.container == name)).one()
            return {"meta": dict(row.meta), "policy": row.policy, "created_at": row.created_at,
                    "objects": int(count), "bytes": int(size)}
        return self.db.transaction(work)

    def post_container(self, account: str, name: str, updates: dict[str, str | None]) -> None:
        def work(s: Session) -> None:
            row = s.get(Container, (account, name))
            if row is None:
                raise NotFound("The container could not be found.")
            row.meta = _apply_meta(row.meta, updates)
            row.put_timestamp = timestamp()
        self.db.transaction(work)

    def delete_container(self, account: str, name: str) -> None:
        """404 when there is none, 409 while it holds objects."""
        def work(s: Session) -> None:
            row = s.get(Container, (account, name))
            if row is None:
                raise NotFound("The container could not be found.")
            first = s.scalar(sa.select(ObjectRow.name).where(
                ObjectRow.account == account, ObjectRow.container == name).limit(1))
            if first is not None:
                raise Conflict("There was a conflict when trying to complete your request. "
                               "The container is not empty.")
            s.delete(row)
        self.db.transaction(work)

    # object rows --------------------------------------------------------------------
    def record_object(self, account: str, container: str, name: str, size: int, etag: str,
                      content_type: str, ts: str, delete_at: int | None) -> None:
        """The listing row of a new object version (an older timestamp never wins)."""
        def work(s: Session) -> None:
            row = s.get(ObjectRow, (account, container, name))
            if row is None:
                s.add(ObjectRow(account=account, container=container, name=name, size=size,
                                etag=etag, content_type=content_type, timestamp=ts,
                                delete_at=delete_at))
            elif row.timestamp <= ts:
                row.size, row.etag, row.content_type = size, etag, content_type
                row.timestamp, row.delete_at = ts, delete_at
        self.db.transaction(work)

    def update_object(self, account: str, container: str, name: str, content_type: str,
                      delete_at: int | None) -> None:
        def work(s: Session) -> None:
            row = s.get(ObjectRow, (account, container, name))
            if row is not None:
                row.content_type, row.delete_at = content_type, delete_at
        self.db.transaction(work)

    def forget_object(self, account: str, container: str, name: str, ts: str) -> None:
        """Remove the listing row unless a newer version replaced it."""
        def work(s: Session) -> None:
            row = s.get(ObjectRow, (account, container, name))
            if row is not None and row.timestamp <= ts:
                s.delete(row)
        self.db.transaction(work)

    def stats(self, account: str, container: str | None = None) -> Stats:
        def work(s: Session) -> Stats:
            q = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(ObjectRow.size), 0)
                          ).where(ObjectRow.account == account)
            if container is not None:
                q = q.where(ObjectRow.container == container)
            count, size = s.execute(q).one()
            return Stats(int(count), int(size))
        return self.db.transaction(work)

    def expired(self, now: int, limit: int = 100) -> list[tuple[str, str, str, str]]:
        """Objects whose X-Delete-At has passed: (account, container, name, timestamp)."""
        def work(s: Session) -> list[tuple[str, str, str, str]]:
            rows = s.execute(sa.select(ObjectRow.account, ObjectRow.container, ObjectRow.name,
                                       ObjectRow.timestamp)
                             .where(ObjectRow.delete_at.is_not(None),
                                    ObjectRow.delete_at <= now).limit(limit)).all()
            return [(a, c, n, t) for a, c, n, t in rows]
        return self.db.transaction(work)

    # listings -----------------------------------------------------------------------
    def list_containers(self, account: str, p: ListParams) -> list[dict[str, Any]]:
        def fetch(s: Session, after: str, before: str) -> list[dict[str, Any]]:
            stats = (sa.select(ObjectRow.container.label("c"), sa.func.count().label("n"),
                               sa.func.coalesce(sa.func.sum(ObjectRow.size), 0).label("b"))
                     .where(ObjectRow.account == account).group_by(ObjectRow.container)
                     .subquery())
            q = (sa.select(Container.name, Container.put_timestamp, stats.c.n, stats.c.b)
                 .outerjoin(stats, stats.c.c == Container.name)
                 .where(Container.account == account))
            q = _window(q, Container.name, p, after, before, s.get_bind().dialect.name)
            return [{"name": n, "count": int(c or 0), "bytes": int(b or 0),
                     "last_modified": t} for n, t, c, b in s.execute(q).all()]
        return self.db.transaction(lambda s: _walk(s, fetch, p))

    def list_objects(self, account: str, container: str, p: ListParams) -> list[dict[str, Any]]:
        def fetch(s: Session, after: str, before: str) -> list[dict[str, Any]]:
            q = sa.select(ObjectRow.name, ObjectRow.size, ObjectRow.etag,
                          ObjectRow.content_type, ObjectRow.timestamp).where(
                ObjectRow.account == account, ObjectRow.container == container)
            q = _window(q, ObjectRow.name, p, after, before, s.get_bind().dialect.name)
            return [{"name": n, "bytes": int(b), "hash": e, "content_type": ct,
                     "last_modified": t} for n, b, e, ct, t in s.execute(q).all()]
        return self.db.transaction(lambda s: _walk(s, fetch, p))


def _window(q: Any, col: Any, p: ListParams, after: str, before: str,
            dialect: str = "sqlite") -> Any:
    """Rows strictly between ``after`` and ``before`` (empty: unbounded), with the
    prefix, in listing order (by code point, as Swift's byte order: PostgreSQL compares
    with the "C" collation), one batch."""
    if dialect == "postgresql":
        col = col.collate("C")
    if after:
        q = q.where(col > after)
    if before:
        q = q.where(col < before)
    if p.prefix:
        q = q.where(col >= p.prefix, col < p.prefix + "\U0010ffff")
    q = q.order_by(col.desc() if p.reverse else col.asc())
    return q.limit(BATCH)


def _walk(s: Session, fetch: Any, p: ListParams) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after, before = (p.end_marker, p.marker) if p.reverse else (p.marker, p.end_marker)
    while len(out) < p.limit:
        rows = fetch(s, after, before)
        if not rows:
            break
        for row in rows:
            name = row["name"]
            if p.reverse:
                before = name
            else:
                after = name
            if p.prefix and not name.startswith(p.prefix):
                continue
            if p.delimiter:
                cut = name.find(p.delimiter, len(p.prefix))
                if cut >= 0:
                    subdir = name[:cut + len(p.delimiter)]
                    if not out or out[-1].get("subdir") != subdir:
                        out.append({"subdir": subdir})
                    # skip the rest of this subdir in one step
                    if p.reverse:
                        before = subdir
                    else:
                        after = subdir + "\U0010ffff"
                    if len(out) >= p.limit:
                        break
                    break
            out.append(row)
            if len(out) >= p.limit:
                break
        else:
            if len(rows) < BATCH:
                break
    return out[:p.limit]
