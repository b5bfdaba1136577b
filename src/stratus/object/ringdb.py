"""Listings from the container and account databases on the ring's devices: the calls
the API and the service layer make (:class:`RingListings`, the same as the central
:class:`stratus.object.listings.Listings` had), each on the replicas of one database.

- A container's database is on the primaries of the partition of
  ``/account/container``, an account's on those of ``/account`` (:mod:`stratus.object.dbs`).
- Writes go to every primary; an info change (a container PUT/POST/DELETE, an account
  POST) needs a quorum, else 503. A write makes a missing database only where the
  container or account is new: a container PUT of a container no replica has (live),
  an account write when a quorum of primaries answered that they lack the account and
  none has it. Any other write on a replica without the database is refused there
  (404) and counts as a replica that did not take it: the replicator fills that
  replica (after a ring change: a new primary), so no near-empty copy is ever read.
  An object row (PUT, DELETE, POST) goes to every primary too, and the call says
  whether every one took it: the caller keeps its pending record when one did not
  (:mod:`stratus.object.pending`), so the updater sends it again; the DB replicator
  converges the replicas anyway.
- Reads: the first primary that answers; when it lacks the database (or has it deleted)
  the others are asked and the newest state wins (a replica that was down when the
  container was made). A copy the replicator is still filling answers as missing.
- After a change of a container's rows its counts go to the account's databases (the row
  of the container, stats newest-wins).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from stratus.common.errors import Conflict, NotFound, ServiceUnavailable
from stratus.contracts.object import hash_path
from stratus.object import dbs
from stratus.object.dbapi import db_call, device_expired
from stratus.object.dbs import POLICY, DbMissing
from stratus.object.diskfile import timestamp
from stratus.object.store import AnyDevice, RingHolder, quorum

LOG = logging.getLogger("stratus.object.ringdb")


@dataclass
class Stats:
    count: int
    bytes: int


@dataclass
class Target:
    kind: str
    part: int
    hash: str
    devices: list[AnyDevice]


def _meta(updates: dict[str, str | None], ts: str) -> dict[str, list[str]]:
    return {k: [v or "", ts] for k, v in updates.items()}


class RingListings:
    """Accounts, containers and listings kept in the storage devices' databases."""

    def __init__(self, rings: RingHolder) -> None:
        self.rings = rings

    # placement --------------------------------------------------------------------
    def target(self, account: str, container: str = "") -> Target:
        ring, devices = self.rings.get()
        part = ring.partition(account, container)
        return Target("container" if container else "account", part,
                      hash_path(ring.salt, account, container),
                      [devices[d.id] for d in ring.primaries(part)])

    def _send(self, t: Target, op: str, args: dict[str, Any]
              ) -> tuple[list[dict[str, Any]], int]:
        """``op`` on every replica: the answers (the complete copies' first) and how
        many replicas lack the database."""
        def one(dev: AnyDevice) -> dict[str, Any] | str:
            try:
                result: dict[str, Any] = db_call(dev, t.kind, t.part, t.hash, op, args)
                return result
            except DbMissing as exc:
                LOG.info("%s %s/%s on %r: %s", op, t.part, t.hash, dev, exc)
                return "missing"
            except OSError as exc:
                LOG.info("%s %s/%s on %r: %s", op, t.part, t.hash, dev, exc)
                return "down"

        # the replicas at once (each on its own device or server)
        with ThreadPoolExecutor(max(1, len(t.devices))) as pool:
            results = list(pool.map(one, t.devices))
        answers = [r for r in results if isinstance(r, dict)]
        answers.sort(key=lambda a: bool(a.get("filling")))  # stable: ring order kept
        return answers, results.count("missing")

    def _write(self, t: Target, op: str, args: dict[str, Any]
               ) -> tuple[list[dict[str, Any]], int]:
        """``op`` on every replica: the answers (the complete copies' first) and how
        many replicas did not take it (down, or without the database)."""
        answers, _missing = self._send(t, op, args)
        return answers, len(t.devices) - len(answers)

    def _write_account(self, t: Target, op: str, args: dict[str, Any]
                       ) -> tuple[list[dict[str, Any]], int]:
        """An account write: made where missing only when no replica has the account
        and a quorum of primaries said they lack it (a new account)."""
        answers, missing = self._send(t, op, args)
        if not answers and missing >= quorum(len(t.devices)):
            answers, missing = self._send(t, op, {**args, "create": True})
        return answers, len(t.devices) - len(answers)

    def _write_quorum(self, t: Target, op: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        answers, _failed = self._write(t, op, args)
        if len(answers) < quorum(len(t.devices)):
            raise ServiceUnavailable("Not enough storage servers answered; retry.")
        return answers

    def _info(self, t: Target) -> dict[str, Any] | None:
        """The first answering replica's info; the newest of all when that one lacks it
        or has it deleted (None: no replica has it)."""
        best: dict[str, Any] | None = None
        answered = 0
        for dev in t.devices:
            try:
                info = db_call(dev, t.kind, t.part, t.hash, "info")
            except DbMissing:
                answered += 1
                continue
            except OSError:
                continue
            answered += 1
            if best is None and not info["deleted"]:
                return info
            if best is None or _newest(info) > _newest(best):
                best = info
        if not answered:
            raise ServiceUnavailable("No storage server holding this listing answered; "
                                     "retry.")
        return best

    def _read(self, t: Target, op: str, args: dict[str, Any]) -> Any:
        for dev in t.devices:
            try:
                return db_call(dev, t.kind, t.part, t.hash, op, args)
            except (OSError, DbMissing):
                continue
        raise NotFound("The container could not be found.")

    # accounts ---------------------------------------------------------------------
    def account(self, account: str) -> dict[str, Any]:
        """An account's metadata and counts (zeros for an account never written)."""
        info = self._info(self.target(account))
        if info is None:
            return {"meta": {}, "created_at": timestamp(), "containers": 0, "objects": 0,
                    "bytes": 0}
        return {"meta": dbs.live_meta(info["meta"]), "created_at": info["created_at"],
                "containers": info["containers"], "objects": info["objects"],
                "bytes": info["bytes"]}

    def account_meta(self, account: str) -> dict[str, Any]:
        info = self._info(self.target(account))
        return dbs.live_meta(info["meta"]) if info else {}

    def update_account(self, account: str, updates: dict[str, str | None]) -> None:
        now = timestamp()
        t = self.target(account)
        answers, _failed = self._write_account(t, "merge_info", {"info": {
            "account": account, "put_timestamp": now, "created_at": now,
            "meta": _meta(updates, now)}})
        if len(answers) < quorum(len(t.devices)):
            raise ServiceUnavailable("Not enough storage servers answered; retry.")

    def _account_row(self, account: str, row: dict[str, Any]) -> bool:
        now = row.get("put_timestamp") or timestamp()
        _answers, failed = self._write_account(self.target(account), "merge_rows", {
            "rows": [row], "info": {"account": account, "put_timestamp": now,
                                    "created_at": now}})
        return failed == 0

    # containers -------------------------------------------------------------------
    def container(self, account: str, name: str, stats: bool = True) -> dict[str, Any]:
        """A container's metadata, policy and counts; 404 when there is none."""
        info = self._info(self.target(account, name))
        if info is None or info["deleted"]:
            raise NotFound("The container could not be found.")
        return {"meta": dbs.live_meta(info["meta"]), "policy": info["policy"],
                "created_at": info["created_at"],
                "objects": info["objects"] if stats else None,
                "bytes": info["bytes"] if stats else None,
                "put_timestamp": info["put_timestamp"]}

    def put_container(self, account: str, name: str, updates: dict[str, str | None],
                      policy: str = POLICY) -> bool:
        """Create (True) or update the metadata of (False) a container."""
        t = self.target(account, name)
        before = self._info(t)
        existed = before is not None and not before["deleted"]
        now = timestamp()
        info = {"account": account, "container": name, "put_timestamp": now,
                "created_at": before["created_at"] if existed and before else now,
                "policy": policy, "meta": _meta(updates, now)}
        # only a new container's database is made where missing (see the module doc)
        answers = self._write_quorum(t, "merge_info", {"info": info, "create": not existed})
        self._account_row(account, {"name": name, "timestamp": now, "put_timestamp": now,
                                    "stats_timestamp": now,
                                    "object_count": answers[0]["objects"],
                                    "bytes_used": answers[0]["bytes"]})
        return not existed

    def post_container(self, account: str, name: str, updates: dict[str, str | None]) -> None:
        self.container(account, name, stats=False)
        now = timestamp()
        self._write_quorum(self.target(account, name), "merge_info", {"info": {
            "account": account, "container": name, "meta": _meta(updates, now)}})

    def delete_container(self, account: str, name: str) -> None:
        """404 when there is none, 409 while it holds objects (on any replica)."""
        t = self.target(account, name)
        self.container(account, name, stats=False)
        for dev in t.devices:
            try:
                info = db_call(dev, t.kind, t.part, t.hash, "info")
            except (OSError, DbMissing):
                continue
            if info["objects"]:
                raise Conflict("There was a conflict when trying to complete your "
                               "request. The container is not empty.")
        now = timestamp()
        self._write_quorum(t, "merge_info", {"info": {
            "account": account, "container": name, "delete_timestamp": now}})
        self._account_row(account, {"name": name, "timestamp": now, "delete_timestamp": now,
                                    "stats_timestamp": now})

    # object rows ------------------------------------------------------------------
    def _object_row(self, account: str, container: str, row: dict[str, Any]) -> bool:
        """One object row to every replica of its container, then the container's
        counts to its account; whether every replica took it."""
        t = self.target(account, container)
        answers, failed = self._write(t, "merge_rows", {"rows": [row]})
        if answers:
            best = answers[0]
            now = timestamp()
            failed += not self._account_row(account, {
                "name": container, "timestamp": now, "put_timestamp": best["put_timestamp"],
                "stats_timestamp": now, "object_count": best["objects"],
                "bytes_used": best["bytes"]})
        return failed == 0 and bool(answers)

    def record_object(self, account: str, container: str, name: str, size: int, etag: str,
                      content_type: str, ts: str, delete_at: int | None) -> bool:
        """The listing row of a new object version (an older timestamp never wins);
        whether every replica has it."""
        return self._object_row(account, container, {
            "name": name, "timestamp": ts, "meta_timestamp": ts, "size": size, "etag": etag,
            "content_type": content_type, "delete_at": delete_at, "deleted": 0})

    def update_object(self, account: str, container: str, name: str, content_type: str,
                      delete_at: int | None, ts: str = "", size: int = 0, etag: str = "",
                      meta_ts: str = "") -> bool:
        """A POST's change of the row of the version ``ts`` (content type, expiry)."""
        if not ts:
            return True
        return self._object_row(account, container, {
            "name": name, "timestamp": ts, "meta_timestamp": meta_ts or timestamp(),
            "size": size, "etag": etag, "content_type": content_type,
            "delete_at": delete_at, "deleted": 0})

    def forget_object(self, account: str, container: str, name: str, ts: str) -> bool:
        """A tombstone row (unless a newer version replaced it); whether every replica
        has it."""
        return self._object_row(account, container, {
            "name": name, "timestamp": ts, "meta_timestamp": ts, "size": 0, "etag": "",
            "content_type": "", "delete_at": None, "deleted": 1})

    def stats(self, account: str, container: str | None = None) -> Stats:
        if container is None:
            info = self.account(account)
            return Stats(info["objects"], info["bytes"])
        info = self.container(account, container)
        return Stats(info["objects"], info["bytes"])

    def expired(self, now: int, limit: int = 100) -> list[tuple[str, str, str, str]]:
        """Objects whose X-Delete-At has passed, from every device that answers."""
        _ring, devices = self.rings.get()
        seen: dict[tuple[str, str, str], str] = {}
        for dev in devices.values():
            try:
                for e in device_expired(dev, now, limit):
                    key = (e["account"], e["container"], e["name"])
                    seen[key] = max(seen.get(key, ""), e["timestamp"])
            except OSError:
                continue
            if len(seen) >= limit:
                break
        return [(a, c, n, t) for (a, c, n), t in list(seen.items())[:limit]]

    # listings ---------------------------------------------------------------------
    def list_containers(self, account: str, p: Any) -> list[dict[str, Any]]:
        try:
            result: list[dict[str, Any]] = self._read(self.target(account), "listing",
                                                      {"params": _params(p)})
        except NotFound:
            return []
        return result

    def list_objects(self, account: str, container: str, p: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._read(self.target(account, container),
                                                  "listing", {"params": _params(p)})
        return result


def _params(p: Any) -> dict[str, Any]:
    return {"limit": p.limit, "marker": p.marker, "end_marker": p.end_marker,
            "prefix": p.prefix, "delimiter": p.delimiter, "reverse": p.reverse}



def _newest(info: dict[str, Any]) -> str:
    return max(info["put_timestamp"], info["delete_timestamp"])
