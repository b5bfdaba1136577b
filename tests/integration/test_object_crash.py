"""kill -9 of stratus-object between an object's write on the replicas and its listing
update (``[debug] crash_at``, common/crashpoints.py): after the restart the replicator's
updater pass (stratus.object.pending) sets the listing right.

- ``object.put.after_store``: the object is on its replicas, not yet listed; the client
  got no answer; after ``stratus-object-replicator --once`` it is listed with its size
  and md5.
- ``object.delete.after_store``: the tombstones are written, the row still listed; after
  the pass it is gone from the listing.

A real stratus-object next to a real stratus-identity (SQLite), files under pytest's tmp
dir (``zob`` in their names); the processes are stopped by pid.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import IdentityServer
from object_api import ObjectServer
from stratus.object.pending import PENDING_DIR

pytestmark = [pytest.mark.integration]


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[IdentityServer, ObjectServer]]:
    identity = IdentityServer(tmp_path / "zob-identity", f"sqlite:///{tmp_path}/identity.db")
    identity.prepare()
    identity.start()
    srv = ObjectServer(tmp_path / "zob-object", identity)
    try:
        srv.prepare()
        yield identity, srv
    finally:
        srv.stop()
        identity.stop()


def _account(identity: IdentityServer, token: str) -> str:
    resp = httpx.get(f"{identity.url}/v3/auth/tokens",
                     headers={"X-Auth-Token": token, "X-Subject-Token": token})
    return "AUTH_" + resp.json()["token"]["project"]["id"]


def _listing(srv: ObjectServer, base: str, h: dict[str, str]) -> list[dict[str, object]]:
    resp = httpx.get(f"{base}/zob-c?format=json", headers=h)
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def _crash(srv: ObjectServer, point: str, method: str, url: str, h: dict[str, str],
           body: bytes = b"") -> None:
    """Restart stratus-object armed at ``point``; the request dies with it."""
    srv.stop()
    os.environ["STRATUS_DEBUG__CRASH_AT"] = point
    try:
        srv.start()
    finally:
        del os.environ["STRATUS_DEBUG__CRASH_AT"]
    with pytest.raises(httpx.TransportError):
        httpx.request(method, url, headers=h, content=body, timeout=30)
    assert srv.proc is not None
    srv.proc.wait(timeout=30)
    assert srv.proc.returncode == -9
    srv.start()


def test_listing_right_after_a_crash_between_store_and_listing(
        stack: tuple[IdentityServer, ObjectServer]) -> None:
    identity, srv = stack
    srv.start()
    token = identity.token()
    h = {"X-Auth-Token": token}
    base = f"{srv.url}/v1/{_account(identity, token)}"
    assert httpx.put(f"{base}/zob-c", headers=h).status_code == 201
    body = os.urandom(70_000)

    _crash(srv, "object.put.after_store", "PUT", f"{base}/zob-c/o1", h, body)
    assert httpx.get(f"{base}/zob-c/o1", headers=h).content == body  # stored ...
    assert _listing(srv, base, h) == []  # ... not listed
    assert len(list(srv.root.rglob(f"{PENDING_DIR}/*.json"))) == 1  # the record left
    srv.replicate_once()
    listed = _listing(srv, base, h)
    assert [(o["name"], o["bytes"], o["hash"]) for o in listed] == [
        ("o1", len(body), hashlib.md5(body, usedforsecurity=False).hexdigest())]
    assert not list(srv.root.rglob(f"{PENDING_DIR}/*.json"))

    _crash(srv, "object.delete.after_store", "DELETE", f"{base}/zob-c/o1", h)
    assert httpx.get(f"{base}/zob-c/o1", headers=h).status_code == 404
    assert [o["name"] for o in _listing(srv, base, h)] == ["o1"]
    srv.replicate_once()
    assert _listing(srv, base, h) == []
    assert httpx.delete(f"{base}/zob-c", headers=h).status_code == 204
    assert "Traceback" not in srv.log().replace("crash point", "")
