"""stratus-object in process (TestClient, fake tokens, three devices under tmp_path):
the Swift v1 semantics the clients rely on, bad input (a clear 4xx, nothing stored),
and the replicator and auditor on real files."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from object_api import ADMIN, ALICE, BOB, READER, ObjectApi, in_process
from stratus.object.consistency import audit, replicate
from stratus.object.diskfile import MARKER

pytestmark = [pytest.mark.unit]
A = "/v1/AUTH_p-alice"
H = {"X-Auth-Token": ALICE}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ObjectApi]:
    with in_process(tmp_path) as a:
        assert a.client.put(f"{A}/c", headers=H).status_code == 201
        yield a


def put(api: ObjectApi, name: str, body: bytes, **headers: str) -> object:
    return api.client.put(f"{A}/c/{name}", headers={**H, **headers}, content=body)


def copies(api: ObjectApi, name: str) -> list[Path]:
    """The .data files of an object on every device."""
    return sorted(p for d in api.devices() for p in (d.path / "objects").rglob("*.data")
                  if json.loads(p.with_suffix(".json").read_text())["name"].endswith(
                      "/" + name))


def test_object_life_cycle_and_headers(api: ObjectApi) -> None:
    r = put(api, "o.txt", b"hello", **{"X-Object-Meta-Color": "blue"})
    assert r.status_code == 201
    assert r.headers["etag"] == hashlib.md5(b"hello").hexdigest()
    assert re.fullmatch(r"tx[0-9a-f]{21}-[0-9a-f]{10}", r.headers["x-trans-id"])
    assert len(copies(api, "o.txt")) == 3
    r = api.client.get(f"{A}/c/o.txt", headers=H)
    assert r.content == b"hello" and r.headers["x-object-meta-color"] == "blue"
    assert r.headers["content-type"].startswith("text/plain") and "last-modified" in r.headers
    r = api.client.head(f"{A}/c/o.txt", headers=H)
    assert r.status_code == 200 and r.headers["content-length"] == "5"
    r = api.client.post(f"{A}/c/o.txt", headers={**H, "X-Object-Meta-Shape": "round"})
    assert r.status_code == 202
    r = api.client.head(f"{A}/c/o.txt", headers=H)
    assert r.headers["x-object-meta-shape"] == "round" and "x-object-meta-color" not in r.headers
    r = api.client.head(f"{A}/c", headers=H)
    assert r.status_code == 204 and r.headers["x-container-object-count"] == "1"
    assert r.headers["x-container-bytes-used"] == "5"
    r = api.client.head(A, headers=H)
    assert r.status_code == 204 and r.headers["x-account-container-count"] == "1"
    assert api.client.delete(f"{A}/c/o.txt", headers=H).status_code == 204
    assert api.client.get(f"{A}/c/o.txt", headers=H).status_code == 404
    assert api.client.delete(f"{A}/c/o.txt", headers=H).status_code == 404
    assert api.client.delete(f"{A}/c", headers=H).status_code == 204


def test_listings(api: ObjectApi) -> None:
    for name in ("a/1", "a/2", "b", "c/x/y", "d"):
        assert put(api, name, b"x").status_code == 201
    get = api.client.get
    assert get(f"{A}/c", headers=H).text == "a/1\na/2\nb\nc/x/y\nd\n"
    r = get(f"{A}/c?delimiter=/&format=json", headers=H).json()
    assert [e.get("name") or e["subdir"] for e in r] == ["a/", "b", "c/", "d"]
    assert get(f"{A}/c?prefix=a/&limit=1", headers=H).text == "a/1\n"
    assert get(f"{A}/c?marker=b&end_marker=d", headers=H).text == "c/x/y\n"
    assert get(f"{A}/c?reverse=true&limit=2", headers=H).text == "d\nc/x/y\n"
    r = get(f"{A}/c", headers={**H, "Accept": "application/json"}).json()
    assert r[0]["hash"] == hashlib.md5(b"x").hexdigest() and r[0]["bytes"] == 1
    assert "<name>a/1</name>" in get(f"{A}/c?format=xml", headers=H).text
    assert get(f"{A}/c?prefix=zzz", headers=H).status_code == 204
    assert get(f"{A}/c?limit=10001", headers=H).status_code == 412
    assert get(f"{A}/c?format=yaml", headers=H).status_code == 400
    assert get(f"{A}?format=json", headers=H).json()[0] == {
        "name": "c", "count": 5, "bytes": 5, "last_modified": pytest.approx(
            get(f"{A}?format=json", headers=H).json()[0]["last_modified"])}


def test_ranges_and_conditions(api: ObjectApi) -> None:
    body = bytes(range(256)) * 4
    etag = put(api, "r", body).headers["etag"]
    get = api.client.get
    r = get(f"{A}/c/r", headers={**H, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == body[10:20]
    assert r.headers["content-range"] == "bytes 10-19/1024"
    assert get(f"{A}/c/r", headers={**H, "Range": "bytes=-4"}).content == body[-4:]
    r = get(f"{A}/c/r", headers={**H, "Range": "bytes=0-0,5-6"})
    assert r.status_code == 206 and "multipart/byteranges" in r.headers["content-type"]
    assert b"Content-Range: bytes 5-6/1024" in r.content
    r = get(f"{A}/c/r", headers={**H, "Range": "bytes=5000-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */1024"
    assert get(f"{A}/c/r", headers={**H, "If-None-Match": etag}).status_code == 304
    assert get(f"{A}/c/r", headers={**H, "If-Match": "nope"}).status_code == 412
    assert get(f"{A}/c/r", headers={**H, "If-Match": f'"{etag}"'}).status_code == 200
    future = "Sun, 01 Jan 2090 00:00:00 GMT"
    past = "Sun, 01 Jan 2000 00:00:00 GMT"
    assert get(f"{A}/c/r", headers={**H, "If-Modified-Since": future}).status_code == 304
    assert get(f"{A}/c/r", headers={**H, "If-Unmodified-Since": past}).status_code == 412
    assert put(api, "r", b"new", **{"If-None-Match": "*"}).status_code == 412
    assert get(f"{A}/c/r", headers=H).content == body


def test_bad_input_stores_nothing(api: ObjectApi) -> None:
    assert put(api, "e", b"abc", ETag="0" * 32).status_code == 422
    assert api.client.get(f"{A}/c/e", headers=H).status_code == 404
    assert copies(api, "e") == []
    assert put(api, "x" * 1025, b"a").status_code == 400
    assert put(api, "nul%00name", b"a").status_code == 400
    assert put(api, "m", b"a", **{"X-Object-Meta-" + "k" * 129: "v"}).status_code == 400
    assert put(api, "m", b"a", **{"X-Object-Meta-K": "v" * 257}).status_code == 400
    assert api.client.put(f"{A}/" + "c" * 257, headers=H).status_code == 400
    r = api.client.get(f"{A}/c", headers={**H, "X-Auth-Token": BOB})
    assert r.status_code == 403
    assert api.client.get(f"{A}/c").status_code == 401
    assert api.client.put(f"{A}/c/o", headers={"X-Auth-Token": BOB},
                          content=b"x").status_code == 403
    assert api.client.put(f"{A}/c/o", headers={"X-Auth-Token": READER},
                          content=b"x").status_code == 403
    assert api.client.get("/v1/nope/c", headers=H).status_code == 400
    assert api.client.put(f"{A}/missing/o", headers=H, content=b"x").status_code == 404
    assert api.client.get(f"{A}/c", headers=H).status_code == 204


def test_admin_reaches_every_account_and_reader_reads(api: ObjectApi) -> None:
    assert put(api, "o", b"1").status_code == 201
    assert api.client.get(f"{A}/c/o", headers={"X-Auth-Token": ADMIN}).content == b"1"
    assert api.client.get(f"{A}/c/o", headers={"X-Auth-Token": READER}).content == b"1"


def test_acls_and_quotas(api: ObjectApi) -> None:
    assert put(api, "pub", b"p").status_code == 201
    assert api.client.get(f"{A}/c/pub").status_code == 401
    r = api.client.post(f"{A}/c", headers={**H, "X-Container-Read": ".r:*"})
    assert r.status_code == 204
    assert api.client.get(f"{A}/c/pub").content == b"p"
    assert api.client.get(f"{A}/c").status_code == 401  # no .rlistings
    api.client.post(f"{A}/c", headers={**H, "X-Container-Write": "p-bob:*"})
    assert api.client.put(f"{A}/c/bob", headers={"X-Auth-Token": BOB},
                          content=b"b").status_code == 201
    api.client.post(f"{A}/c", headers={**H, "X-Container-Meta-Quota-Bytes": "4"})
    assert put(api, "big", b"12345").status_code == 413
    assert api.client.get(f"{A}/c/big", headers=H).status_code == 404
    assert api.client.post(f"{A}/c", headers={
        **H, "X-Container-Meta-Quota-Count": "many"}).status_code == 400


def test_copy_and_expiry(api: ObjectApi) -> None:
    assert put(api, "src", b"data", **{"X-Object-Meta-A": "1"}).status_code == 201
    r = api.client.put(f"{A}/c/dst", headers={**H, "X-Copy-From": "/c/src",
                                              "Content-Length": "0"})
    assert r.status_code == 201
    r = api.client.get(f"{A}/c/dst", headers=H)
    assert r.content == b"data" and r.headers["x-object-meta-a"] == "1"
    r = api.client.request("COPY", f"{A}/c/src", headers={**H, "Destination": "c/dst2"})
    assert r.status_code == 201
    assert api.client.get(f"{A}/c/dst2", headers=H).content == b"data"
    assert put(api, "gone", b"x", **{"X-Delete-At": str(int(time.time()) + 1)}
               ).status_code == 201
    assert put(api, "past", b"x", **{"X-Delete-At": "1"}).status_code == 400
    assert api.core.expire(now=time.time() + 5) == 1
    assert api.client.get(f"{A}/c/gone", headers=H).status_code == 404
    assert "gone" not in api.client.get(f"{A}/c", headers=H).text


def test_put_with_a_device_down_then_replication_restores(api: ObjectApi) -> None:
    """A primary down: the write goes to a handoff; back up, the replicator moves it."""
    loc = api.core.store.locate("AUTH_p-alice", "c", "o")
    down = loc.devices[0]
    (down.path / MARKER).unlink()
    assert put(api, "o", b"v1").status_code == 201
    assert api.client.get(f"{A}/c/o", headers=H).content == b"v1"
    (down.path / MARKER).touch()
    assert down.read(loc.part, loc.obj_hash) is None
    replicate(api.core.store.rings)
    assert down.read(loc.part, loc.obj_hash) is not None
    assert len(copies(api, "o")) == 3


def test_lost_and_corrupt_replicas_come_back_and_deletes_stay(api: ObjectApi) -> None:
    assert put(api, "o", b"good bytes").status_code == 201
    first, second, third = copies(api, "o")
    first.unlink()
    second.write_bytes(b"bad bytes!")
    report = audit(api.core.store.rings)
    assert report.quarantined == 1
    replicate(api.core.store.rings)
    restored = copies(api, "o")
    assert len(restored) == 3 and all(p.read_bytes() == b"good bytes" for p in restored)
    assert api.client.delete(f"{A}/c/o", headers=H).status_code == 204
    # an old copy put back behind the tombstone's back does not win
    (third.parent / "0000000001.00000.json").write_text(
        json.dumps({"name": "/AUTH_p-alice/c/o", "size": 3,
                    "etag": hashlib.md5(b"old").hexdigest()}))
    (third.parent / "0000000001.00000.data").write_bytes(b"old")
    replicate(api.core.store.rings)
    assert api.client.get(f"{A}/c/o", headers=H).status_code == 404
    assert copies(api, "o") == []


def _sig(key: str, method: str, expires: int, path: str, digest: str = "sha1") -> str:
    import hmac

    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(),
                    getattr(hashlib, digest)).hexdigest()


def test_tempurl(api: ObjectApi) -> None:
    assert put(api, "t", b"temp").status_code == 201
    assert api.client.post(A, headers={**H, "X-Account-Meta-Temp-URL-Key": "k1"}
                           ).status_code == 204
    path = f"{A}/c/t"
    exp = int(time.time()) + 60
    for digest in ("sha1", "sha256", "sha512"):
        url = f"{path}?temp_url_sig={_sig('k1', 'GET', exp, path, digest)}&temp_url_expires={exp}"
        assert api.client.get(url).content == b"temp"
    assert api.client.head(
        f"{path}?temp_url_sig={_sig('k1', 'GET', exp, path)}&temp_url_expires={exp}"
    ).status_code == 200
    bad = api.client.get(f"{path}?temp_url_sig={'0' * 40}&temp_url_expires={exp}")
    assert bad.status_code == 401 and "does not match" in bad.text
    old = int(time.time()) - 1
    r = api.client.get(f"{path}?temp_url_sig={_sig('k1', 'GET', old, path)}"
                       f"&temp_url_expires={old}")
    assert r.status_code == 401 and "expired" in r.text
    # a GET signature does not let a PUT in; a PUT signature does, with a container key
    assert api.client.post(f"{A}/c", headers={**H, "X-Container-Meta-Temp-URL-Key": "k2"}
                           ).status_code == 204
    new = f"{A}/c/up"
    r = api.client.put(f"{new}?temp_url_sig={_sig('k2', 'GET', exp, new)}"
                       f"&temp_url_expires={exp}", content=b"x")
    assert r.status_code == 401
    r = api.client.put(f"{new}?temp_url_sig={_sig('k2', 'PUT', exp, new)}"
                       f"&temp_url_expires={exp}", content=b"x")
    assert r.status_code == 201
    assert "tempurl" in api.client.get("/info").json()


def test_bulk_delete(api: ObjectApi) -> None:
    for name in ("b1", "b 2"):
        assert put(api, name, b"x").status_code == 201
    body = "/c/b1\n/c/b%202\n/c/none\n/c\n"
    r = api.client.post(f"{A}?bulk-delete", headers={**H, "Accept": "application/json",
                                                     "Content-Type": "text/plain"},
                        content=body)
    assert r.status_code == 200
    assert r.json()["Number Deleted"] == 3 and r.json()["Number Not Found"] == 1
    assert api.client.head(f"{A}/c", headers=H).status_code == 404
    r = api.client.post(f"{A}?bulk-delete", headers={"X-Auth-Token": BOB}, content=body)
    assert r.status_code == 403


def test_static_large_object(api: ObjectApi) -> None:
    assert api.client.put(f"{A}/segs", headers=H).status_code == 201
    parts = [b"a" * 5, b"b" * 7, b"c" * 3]
    manifest = []
    for i, part in enumerate(parts):
        r = api.client.put(f"{A}/segs/p{i}", headers=H, content=part)
        manifest.append({"path": f"/segs/p{i}", "etag": r.headers["etag"],
                         "size_bytes": len(part)})
    r = api.client.put(f"{A}/c/big?multipart-manifest=put", headers=H,
                       content=json.dumps(manifest))
    assert r.status_code == 201
    whole = b"".join(parts)
    slo_etag = hashlib.md5("".join(m["etag"] for m in manifest).encode()).hexdigest()
    assert r.headers["etag"] == f'"{slo_etag}"'  # quoted, as Swift's
    r = api.client.get(f"{A}/c/big", headers=H)
    assert r.content == whole and r.headers["x-static-large-object"] == "True"
    assert r.headers["etag"].strip('"') == slo_etag
    r = api.client.get(f"{A}/c/big", headers={**H, "Range": "bytes=3-9"})
    assert r.status_code == 206 and r.content == whole[3:10]
    listed = api.client.get(f"{A}/c?format=json", headers=H).json()
    assert listed[0]["bytes"] == len(whole) and listed[0]["hash"] == slo_etag
    got = api.client.get(f"{A}/c/big?multipart-manifest=get", headers=H).json()
    assert [g["name"] for g in got] == ["/segs/p0", "/segs/p1", "/segs/p2"]
    bad = [{**manifest[0], "etag": "0" * 32}, {"path": "/segs/none"}]
    r = api.client.put(f"{A}/c/bad?multipart-manifest=put", headers=H,
                       content=json.dumps(bad))
    assert r.status_code == 400 and "Etag Mismatch" in r.text and "404" in r.text
    assert api.client.get(f"{A}/c/bad", headers=H).status_code == 404
    r = api.client.delete(f"{A}/c/big?multipart-manifest=delete", headers=H)
    assert r.status_code == 200
    assert api.client.get(f"{A}/segs", headers=H).status_code == 204


def test_dynamic_large_object(api: ObjectApi) -> None:
    for i, part in enumerate((b"one-", b"two-", b"three")):
        assert put(api, f"segs/{i:03d}", part).status_code == 201
    r = put(api, "dlo", b"", **{"X-Object-Manifest": "c/segs/"})
    assert r.status_code == 201
    r = api.client.get(f"{A}/c/dlo", headers=H)
    assert r.content == b"one-two-three"
    assert api.client.get(f"{A}/c/dlo", headers={**H, "Range": "bytes=4-6"}
                          ).content == b"two"
    assert api.client.head(f"{A}/c/dlo", headers=H).headers["content-length"] == "13"


def test_account_quota_set_by_an_admin_only(api: ObjectApi) -> None:
    r = api.client.post(A, headers={**H, "X-Account-Meta-Quota-Bytes": "3"})
    assert r.status_code == 403
    r = api.client.post(A, headers={"X-Auth-Token": ADMIN, "X-Account-Meta-Quota-Bytes": "3"})
    assert r.status_code == 204
    assert put(api, "fits", b"123").status_code == 201
    r = put(api, "over", b"4")
    assert r.status_code == 413 and "account's quota" in r.text
    assert api.client.get(f"{A}/c/over", headers=H).status_code == 404
