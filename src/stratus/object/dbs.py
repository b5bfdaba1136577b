"""Container and account listings in small SQLite databases on the storage devices
(Swift's container and account servers' databases, in short). (Just over 500 lines: the
schema, the merge rules and the server-side operations on one database belong together.)

One database file per container (``<device>/containers/<part>/<hash>/<hash>.db``, the
ring's partition of ``/account/container``) and per account
(``<device>/accounts/<part>/<hash>/<hash>.db``, of ``/account``), each replicated on the
partition's primaries. SQLite in WAL mode with ``synchronous=FULL``: a process killed
mid-write leaves the last committed state.

Every change carries a timestamp and the newest wins, so replicas merge in any order:

- the database's info: ``put_timestamp`` / ``delete_timestamp`` (the container or account
  exists while the first is the newer), metadata key by key (``{key: [value, ts]}``; an
  empty value is a removal that still wins over older values);
- a row (an object in a container, a container in an account) is kept with a ``deleted``
  flag and its timestamp when it is removed (a tombstone), so replication does not bring
  it back. Every change of a row gets the next ``seq``: a replica sends a peer only the
  rows changed since the last point that peer acknowledged (:meth:`Db.rows_since`).

:func:`call` runs one named operation on a database (the object server's internal API
calls it with the JSON the proxy sent; a local device calls it directly).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("container", "account")
BATCH = 1000
RECLAIM_AGE = 7 * 24 * 3600.0  # tombstone rows older than this are dropped
POLICY = "Policy-0"

_SCHEMA = {
    "container": """
        CREATE TABLE IF NOT EXISTS info (
            id INTEGER PRIMARY KEY CHECK (id = 0), account TEXT NOT NULL,
            container TEXT NOT NULL, created_at TEXT NOT NULL, put_timestamp TEXT NOT NULL,
            delete_timestamp TEXT NOT NULL, policy TEXT NOT NULL, meta TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS item (
            name TEXT PRIMARY KEY, timestamp TEXT NOT NULL, meta_timestamp TEXT NOT NULL,
            size INTEGER NOT NULL, etag TEXT NOT NULL, content_type TEXT NOT NULL,
            delete_at INTEGER, deleted INTEGER NOT NULL, seq INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS item_seq ON item (seq);
        CREATE INDEX IF NOT EXISTS item_delete_at ON item (delete_at)
            WHERE delete_at IS NOT NULL AND deleted = 0;
        CREATE TABLE IF NOT EXISTS sync (peer TEXT PRIMARY KEY, point INTEGER NOT NULL);
    """,
    "account": """
        CREATE TABLE IF NOT EXISTS info (
            id INTEGER PRIMARY KEY CHECK (id = 0), account TEXT NOT NULL,
            container TEXT NOT NULL, created_at TEXT NOT NULL, put_timestamp TEXT NOT NULL,
            delete_timestamp TEXT NOT NULL, policy TEXT NOT NULL, meta TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS item (
            name TEXT PRIMARY KEY, timestamp TEXT NOT NULL, put_timestamp TEXT NOT NULL,
            delete_timestamp TEXT NOT NULL, stats_timestamp TEXT NOT NULL,
            object_count INTEGER NOT NULL, bytes_used INTEGER NOT NULL,
            deleted INTEGER NOT NULL, seq INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS item_seq ON item (seq);
        CREATE TABLE IF NOT EXISTS sync (peer TEXT PRIMARY KEY, point INTEGER NOT NULL);
    """,
}
_FIELDS = {
    "container": ("name", "timestamp", "meta_timestamp", "size", "etag", "content_type",
                  "delete_at", "deleted"),
    "account": ("name", "timestamp", "put_timestamp", "delete_timestamp", "stats_timestamp",
                "object_count", "bytes_used", "deleted"),
}


class DbError(ValueError):
    """A malformed operation or row (the internal API answers 400 naming it)."""


class DbMissing(LookupError):
    """No such database on this device."""


@dataclass
class ListParams:
    """The query of a listing (validated by the handler)."""

    limit: int
    marker: str = ""
    end_marker: str = ""
    prefix: str = ""
    delimiter: str = ""
    reverse: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ListParams:
        try:
            return cls(limit=int(d["limit"]), marker=str(d.get("marker", "")),
                       end_marker=str(d.get("end_marker", "")),
                       prefix=str(d.get("prefix", "")), delimiter=str(d.get("delimiter", "")),
                       reverse=bool(d.get("reverse", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise DbError(f"params: {exc}") from exc


def db_path(device: Path, kind: str, part: int, db_hash: str) -> Path:
    """Where a container's or account's database lives on a device."""
    return device / f"{kind}s" / str(part) / db_hash / f"{db_hash}.db"


def merge_meta(current: dict[str, list[str]], updates: dict[str, list[str]]
               ) -> dict[str, list[str]]:
    """Key by key, the newer ``[value, ts]`` wins."""
    out = dict(current)
    for key, pair in updates.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise DbError(f"meta[{key!r}]: [value, timestamp]")
        if key not in out or str(pair[1]) > out[key][1]:
            out[key] = [str(pair[0]), str(pair[1])]
    return out


def live_meta(meta: dict[str, list[str]]) -> dict[str, str]:
    """The metadata a client sees: the keys whose newest value is not a removal."""
    return {k: v for k, (v, _ts) in meta.items() if v}


class Db:
    """One container's or account's database file."""

    def __init__(self, path: Path, kind: str) -> None:
        if kind not in KINDS:
            raise DbError(f"kind: one of {', '.join(KINDS)}")
        self.path = path
        self.kind = kind

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def _conn(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        if not self.path.is_file():
            if not create:
                raise DbMissing(str(self.path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if create:
                conn.executescript(_SCHEMA[self.kind])
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # info -------------------------------------------------------------------------
    @staticmethod
    def _info(conn: sqlite3.Connection) -> dict[str, Any] | None:
        row = conn.execute("SELECT account, container, created_at, put_timestamp, "
                           "delete_timestamp, policy, meta FROM info").fetchone()
        if row is None:
            return None
        return {"account": row[0], "container": row[1], "created_at": row[2],
                "put_timestamp": row[3], "delete_timestamp": row[4], "policy": row[5],
                "meta": json.loads(row[6])}

    def filling(self) -> bool:
        """Whether the replicator made this copy and has not sent it every row yet (a
        read skips such a copy; writes still go to it)."""
        return self.path.with_suffix(".filling").exists()

    def filled(self) -> None:
        """A complete replica's rows have all reached this copy: reads may use it."""
        self.path.with_suffix(".filling").unlink(missing_ok=True)

    def merge_info(self, info: dict[str, Any], create: bool = True,
                   filling: bool = False) -> dict[str, Any]:
        """Merge another replica's (or a request's) info: the newer timestamps and
        metadata values win; a missing database is made only with ``create`` (else
        DbMissing), marked ``filling`` if asked (:func:`call`). The merged info."""
        try:
            account, container = str(info["account"]), str(info.get("container", ""))
            put_ts = str(info.get("put_timestamp", ""))
            del_ts = str(info.get("delete_timestamp", ""))
            created = str(info.get("created_at") or put_ts)
            policy = str(info.get("policy") or POLICY)
            meta = info.get("meta") or {}
            if not isinstance(meta, dict):
                raise TypeError("meta is not an object")
        except (KeyError, TypeError) as exc:
            raise DbError(f"info: {exc}") from exc
        if create and not self.path.is_file():
            marker = self.path.with_suffix(".filling")
            if filling:  # before the file appears: a copy never looks whole too early
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            else:
                marker.unlink(missing_ok=True)
        with self._conn(create=create) as conn:
            cur = self._info(conn)
            if cur is None:
                conn.execute("INSERT INTO info VALUES (0, ?, ?, ?, ?, ?, ?, ?)",
                             (account, container, created, put_ts, del_ts, policy,
                              json.dumps(merge_meta({}, meta))))
            else:
                conn.execute("UPDATE info SET created_at = ?, put_timestamp = ?, "
                             "delete_timestamp = ?, meta = ?",
                             (min(cur["created_at"] or created, created or cur["created_at"]),
                              max(cur["put_timestamp"], put_ts),
                              max(cur["delete_timestamp"], del_ts),
                              json.dumps(merge_meta(cur["meta"], meta))))
            merged = self._info(conn)
            assert merged is not None
            return self._with_stats(conn, merged)

    def _with_stats(self, conn: sqlite3.Connection, info: dict[str, Any]) -> dict[str, Any]:
        info["deleted"] = info["delete_timestamp"] > info["put_timestamp"]
        if self.kind == "container":
            n, b = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM item "
                                "WHERE deleted = 0").fetchone()
            info.update(objects=int(n), bytes=int(b))
        else:
            c, n, b = conn.execute("SELECT count(*), coalesce(sum(object_count), 0), "
                                   "coalesce(sum(bytes_used), 0) FROM item "
                                   "WHERE deleted = 0").fetchone()
            info.update(containers=int(c), objects=int(n), bytes=int(b))
        info["max_seq"] = int(conn.execute("SELECT coalesce(max(seq), 0) FROM item")
                              .fetchone()[0])
        info["filling"] = self.filling()
        return info

    def info(self) -> dict[str, Any]:
        """The info with its counts (``deleted``: the delete is the newer)."""
        with self._conn() as conn:
            info = self._info(conn)
            if info is None:
                raise DbMissing(str(self.path))
            return self._with_stats(conn, info)

    # rows -------------------------------------------------------------------------
    def merge_rows(self, rows: list[dict[str, Any]]) -> int:
        """Merge rows (objects or containers, live or tombstones): the newer wins; how
        many changed here."""
        if not isinstance(rows, list):
            raise DbError("rows: a list")
        fields = _FIELDS[self.kind]
        changed = 0
        with self._conn() as conn:
            if self._info(conn) is None:
                raise DbMissing(str(self.path))
            seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM item").fetchone()[0])
            for row in rows:
                new = self._row(row, fields)
                old = conn.execute(f"SELECT {', '.join(fields)} FROM item WHERE name = ?",
                                   (new["name"],)).fetchone()
                merged = self._merge_row(dict(zip(fields, old, strict=True)) if old else None,
                                         new)
                if merged is None:
                    continue
                seq += 1
                changed += 1
                conn.execute(f"INSERT OR REPLACE INTO item ({', '.join(fields)}, seq) "
                             f"VALUES ({', '.join('?' * (len(fields) + 1))})",
                             [merged[f] for f in fields] + [seq])
        return changed

    @staticmethod
    def _row(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(row, dict) or not isinstance(row.get("name"), str) \
                or not row["name"] or "\x00" in row["name"]:
            raise DbError("rows[]: an object with a non-empty name")
        out: dict[str, Any] = {}
        for f in fields:
            v = row.get(f)
            if f in ("size", "object_count", "bytes_used", "deleted"):
                try:
                    out[f] = int(v or 0)
                except (TypeError, ValueError) as exc:
                    raise DbError(f"rows[{row['name']!r}].{f}: a whole number") from exc
            elif f == "delete_at":
                out[f] = None if v is None else int(v)
            else:
                out[f] = str(v or "")
        if not out["timestamp"]:
            raise DbError(f"rows[{row['name']!r}].timestamp: required")
        return out

    def _merge_row(self, old: dict[str, Any] | None, new: dict[str, Any]
                   ) -> dict[str, Any] | None:
        """The row to store, None when ``old`` already is at least as new."""
        if old is None:
            return new
        if self.kind == "container":
            if new["timestamp"] > old["timestamp"]:
                return new
            if new["timestamp"] == old["timestamp"] and not old["deleted"] \
                    and not new["deleted"] and new["meta_timestamp"] > old["meta_timestamp"]:
                return {**old, "content_type": new["content_type"],
                        "delete_at": new["delete_at"],
                        "meta_timestamp": new["meta_timestamp"]}
            return None
        merged = dict(old)
        merged["put_timestamp"] = max(old["put_timestamp"], new["put_timestamp"])
        merged["delete_timestamp"] = max(old["delete_timestamp"], new["delete_timestamp"])
        if new["stats_timestamp"] > old["stats_timestamp"]:
            merged.update(stats_timestamp=new["stats_timestamp"],
                          object_count=new["object_count"], bytes_used=new["bytes_used"])
        merged["deleted"] = int(merged["delete_timestamp"] > merged["put_timestamp"])
        merged["timestamp"] = max(merged["put_timestamp"], merged["delete_timestamp"],
                                  merged["stats_timestamp"])
        return None if merged == old else merged

    def rows_since(self, point: int, limit: int = BATCH) -> list[dict[str, Any]]:
        """Rows (tombstones too) changed after ``point``, in change order, with ``seq``."""
        fields = _FIELDS[self.kind]
        with self._conn() as conn:
            return [dict(zip((*fields, "seq"), r, strict=True)) for r in conn.execute(
                f"SELECT {', '.join(fields)}, seq FROM item WHERE seq > ? ORDER BY seq "
                f"LIMIT ?", (point, limit))]

    def sync_point(self, peer: str) -> int:
        with self._conn() as conn:
            r = conn.execute("SELECT point FROM sync WHERE peer = ?", (peer,)).fetchone()
            return int(r[0]) if r else 0

    def set_sync_point(self, peer: str, point: int) -> None:
        with self._conn() as conn:
            conn.execute("INSERT OR REPLACE INTO sync VALUES (?, ?)", (peer, point))

    def digest(self) -> str:
        """md5 of the info and every row's identity and timestamps (equal on two replicas
        that hold the same state)."""
        h = hashlib.md5(usedforsecurity=False)
        fields = _FIELDS[self.kind]
        with self._conn() as conn:
            info = self._info(conn) or {}
            h.update(json.dumps([info.get("put_timestamp"), info.get("delete_timestamp"),
                                 info.get("meta")], sort_keys=True).encode())
            for r in conn.execute(f"SELECT {', '.join(fields)} FROM item ORDER BY name"):
                h.update(json.dumps(r).encode())
        return h.hexdigest()

    def reclaim(self, now: float | None = None) -> int:
        """Drop tombstone rows older than the reclaim age; how many."""
        limit = "%016.5f" % ((now or time.time()) - RECLAIM_AGE)
        with self._conn() as conn:
            return conn.execute("DELETE FROM item WHERE deleted = 1 AND timestamp < ?",
                                (limit,)).rowcount

    # listings ---------------------------------------------------------------------
    def listing(self, p: ListParams) -> list[dict[str, Any]]:
        """The live rows in listing order with ``subdir`` entries folded in."""
        with self._conn() as conn:
            return walk(lambda after, before: self._batch(conn, p, after, before), p)

    def _batch(self, conn: sqlite3.Connection, p: ListParams, after: str, before: str
               ) -> list[dict[str, Any]]:
        where, args = ["deleted = 0"], []
        if after:
            where.append("name > ?")
            args.append(after)
        if before:
            where.append("name < ?")
            args.append(before)
        if p.prefix:
            where.append("name >= ? AND name < ?")
            args += [p.prefix, p.prefix + "\U0010ffff"]
        order = "DESC" if p.reverse else "ASC"
        if self.kind == "container":
            cols = "name, size, etag, content_type, timestamp"
            rows = conn.execute(f"SELECT {cols} FROM item WHERE {' AND '.join(where)} "
                                f"ORDER BY name {order} LIMIT {BATCH}", args).fetchall()
            return [{"name": n, "bytes": int(b), "hash": e, "content_type": ct,
                     "last_modified": t} for n, b, e, ct, t in rows]
        rows = conn.execute(f"SELECT name, object_count, bytes_used, put_timestamp FROM item "
                            f"WHERE {' AND '.join(where)} ORDER BY name {order} "
                            f"LIMIT {BATCH}", args).fetchall()
        return [{"name": n, "count": int(c), "bytes": int(b), "last_modified": t}
                for n, c, b, t in rows]

    def expired(self, now: int, limit: int) -> list[tuple[str, str]]:
        """(name, timestamp) of live objects whose delete_at has passed."""
        with self._conn() as conn:
            return [(n, t) for n, t in conn.execute(
                "SELECT name, timestamp FROM item WHERE delete_at IS NOT NULL AND "
                "deleted = 0 AND delete_at <= ? LIMIT ?", (now, limit))]


def walk(fetch: Any, p: ListParams) -> list[dict[str, Any]]:
    """Batches from ``fetch(after, before)`` into one listing page: prefix, delimiter
    (one ``subdir`` entry for the names under it), marker/end_marker, reverse, limit."""
    out: list[dict[str, Any]] = []
    after, before = (p.end_marker, p.marker) if p.reverse else (p.marker, p.end_marker)
    while len(out) < p.limit:
        rows = fetch(after, before)
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
                    break
            out.append(row)
            if len(out) >= p.limit:
                break
        else:
            if len(rows) < BATCH:
                break
    return out[:p.limit]


def local_dbs(device: Path, kind: str) -> Iterator[tuple[int, str, Db]]:
    """(partition, hash, database) of every database of a kind on a device."""
    root = device / f"{kind}s"
    for part_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if not part_dir.name.isdigit():
            continue
        for hash_dir in sorted(part_dir.iterdir()):
            path = hash_dir / f"{hash_dir.name}.db"
            if path.is_file():
                yield int(part_dir.name), hash_dir.name, Db(path, kind)


def call(device: Path, kind: str, part: int, db_hash: str, op: str,
         args: dict[str, Any]) -> Any:
    """One operation on a database by name (the internal API's and a local device's
    entry point). DbMissing when the database is not on this device; DbError for a
    malformed request.

    A write makes a missing database only with ``"create": true`` (a container PUT that
    makes a new container, an account's first write, the replicator's copy for a peer
    without it: ``"filling": true`` too); without it a write on a missing database is
    DbMissing, so a write between a ring change and the replicator's pass never leaves a
    near-empty database on a new primary. ``info`` and ``listing`` answer DbMissing for a
    copy the replicator is still filling (``filled`` ends that), so a read asks the next
    replica."""
    db = Db(db_path(device, kind, part, db_hash), kind)
    create = bool(args.get("create"))
    try:
        if op in ("info", "listing") and db.filling():
            raise DbMissing(f"{db.path} is being filled by the replicator")
        if op == "info":
            return db.info()
        if op == "merge_info":
            return db.merge_info(dict(args["info"]), create=create,
                                 filling=bool(args.get("filling")))
        if op == "merge_rows":
            if args.get("info") and create and not db.exists():
                db.merge_info(dict(args["info"]), create=True)
            db.merge_rows(list(args["rows"]))
            return db.info()
        if op == "listing":
            return db.listing(ListParams.from_dict(dict(args["params"])))
        if op == "digest":
            return {"digest": db.digest(), "max_seq": db.info()["max_seq"],
                    "filling": db.filling()}
        if op == "filled":
            db.info()  # DbMissing when there is none
            db.filled()
            return {}
        if op == "expired":
            return db.expired(int(args["now"]), int(args.get("limit", 100)))
    except (KeyError, TypeError) as exc:
        raise DbError(f"{op}: {exc}") from exc
    raise DbError(f"op: one of info, merge_info, merge_rows, listing, digest, filled, "
                  f"expired (not {op!r})")


def device_expired(device: Path, now: int, limit: int) -> list[dict[str, Any]]:
    """Expired objects of every container database on a device."""
    out: list[dict[str, Any]] = []
    for _part, _h, db in local_dbs(device, "container"):
        try:
            info = db.info()
        except (DbMissing, sqlite3.DatabaseError):
            continue
        for name, ts in db.expired(now, limit - len(out)):
            out.append({"account": info["account"], "container": info["container"],
                        "name": name, "timestamp": ts})
        if len(out) >= limit:
            break
    return out

