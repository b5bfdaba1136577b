"""Issue 14: "adding a storage host and re-running site.yml rebalances and the replicator
moves the data", with real processes: a real stratus-identity, a real stratus-object
proxy and real stratus-object-server processes, each with its own device under
/tmp/zrb-* (the classes of ``test_object_servers.py``, imported).

The ring changes the way the ``object_store`` role changes it: ``stratus-manage ring
build`` on the proxy's host (the first controller) with the new device list, then the
file copied to every storage host (replaced atomically, as ``ansible.builtin.copy``
does); every process re-reads its ring file when it changes, no restart.

1. Two servers, a ring of 2 devices with 2 replicas: 8 containers whose databases and
   objects cover every partition, objects PUT through the proxy.
2. A third server, replicas 3: the old placements stay; GETs, listings and counts are
   right before the replicator ran, and a PUT and a DELETE made then are kept; after one
   replicator pass on each server (and the proxy's updater) every object, tombstone,
   container and account database is on the 3 primaries, the new server included — it
   serves every GET and listing alone.
3. A fourth server (replicas 3): partitions move off the old servers; after one pass
   each, every object and database is on exactly the primaries the new ring names (a
   device that is no longer a primary holds nothing of that partition), and reads
   stay right throughout -- also after a container POST and an object PUT made before
   the pass on a container whose database moves to the new server (which makes no
   database there: the replicator does).

Processes are stopped by pid; the /tmp/zrb-* directory is removed. About 30-60 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_object_servers import HTTP, Cluster, Proxy, StorageServer, _intact, _proxy_pass

from helpers import IdentityServer
from stratus.contracts.object import Ring, hash_path
from stratus.object.dbs import Db, db_path, live_meta
from stratus.object.ring import load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
PART_POWER = 3  # 8 partitions: the containers and objects below cover each one


@dataclass
class Rebalance:
    """The cluster and what it must hold: live objects' bodies, deleted objects."""

    c: Cluster
    root: Path
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    meta: str = "zrb-meta-value"

    @property
    def ring_file(self) -> Path:
        return self.c.proxy.root / "ring.json"

    def ring(self) -> Ring:
        return load(self.ring_file)

    def containers(self) -> list[str]:
        return sorted({cont for cont, _ in self.objects} | {cont for cont, _ in self.deleted})

    def rebuild(self, replicas: int) -> Ring:
        """The role's way: ``stratus-manage ring build`` where the ring is built, then
        the file copied (an atomic replace) to every storage host."""
        specs = [arg for i, s in enumerate(self.c.servers)
                 for arg in ("--device", f"127.0.0.1:{s.port}:{i + 1}:{s.root / 'dev'}")]
        self.c.proxy.manage("ring", "build", "--ring-file", str(self.ring_file),
                            "--part-power", str(PART_POWER), "--replicas", str(replicas),
                            *specs)
        for srv in self.c.servers:
            tmp = srv.ring_file.with_name(".ring.json.tmp")
            shutil.copyfile(self.ring_file, tmp)
            os.replace(tmp, srv.ring_file)
        return self.ring()

    def add_server(self) -> StorageServer:
        i = len(self.c.servers)
        srv = StorageServer(self.root / f"srv{i}", self.root / f"srv{i}" / "ring.json")
        srv.prepare()
        self.c.servers.append(srv)
        return srv

    def dev_id(self, srv: StorageServer) -> int:
        return next(d.id for d in self.ring().devices if d.path == str(srv.root / "dev"))

    def replicate(self) -> None:
        """One replicator pass on every server, then the proxy host's updater (listing
        updates a database replica missed)."""
        for srv in self.c.servers:
            srv.consistency("replicator")
        _proxy_pass(self.c, "updater")
        assert not list((self.c.proxy.root / "spool" / "async_pending").glob("*.json"))


def _start_cluster(root: Path) -> Iterator[Rebalance]:
    identity = IdentityServer(root / "identity", f"sqlite:///{root}/identity.sqlite")
    identity.prepare()
    identity.start()
    proxy = Proxy(root / "proxy", identity)
    proxy.extra = {}
    c = Cluster(identity, proxy, [])
    rb = Rebalance(c, root)
    try:
        proxy.root.mkdir(parents=True)
        (proxy.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        proxy.manage("db", "sync", "object")
        identity.manage("catalog", "ensure", "--type", "object-store", "--name", "swift",
                        "--public-url", f"{proxy.url}/v1/AUTH_%(project_id)s")
        for _ in range(2):
            rb.add_server()
        ring = rb.rebuild(2)
        assert (ring.replicas, len(ring.devices)) == (2, 2)
        for srv in c.servers:
            srv.start()
        proxy.start()
        c.token = identity.token()
        body = HTTP.get(f"{identity.url}/v3/auth/tokens",
                        headers={"X-Auth-Token": c.token, "X-Subject-Token": c.token}).json()
        c.account = f"AUTH_{body['token']['project']['id']}"
        yield rb
    finally:
        proxy.stop()
        for srv in c.servers:
            srv.stop()
        identity.stop()
    for srv in c.servers:
        assert "Traceback" not in srv.log(), srv.log()[-3000:]
    assert "Traceback" not in proxy.log(), proxy.log()[-3000:]


@pytest.fixture(scope="module")
def rb() -> Iterator[Rebalance]:
    root = Path(tempfile.mkdtemp(prefix="zrb-", dir="/tmp"))
    try:
        yield from _start_cluster(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _name_in(part: int, where: Callable[[str], int]) -> str:
    """The first name ``zrb-<n>`` that ``where`` puts in partition ``part``."""
    n = 0
    while where(f"zrb-{n}") != part:
        n += 1
    return f"zrb-{n}"


def check_reads(rb: Rebalance) -> None:
    """Every GET, container listing, container HEAD and the account listing through
    the proxy say what was stored."""
    c = rb.c
    for (cont, name), body in rb.objects.items():
        got = HTTP.get(c.url(f"/{cont}/{name}"), headers=c.h)
        assert got.status_code == 200 and got.content == body, (cont, name, got.status_code)
    for cont, name in rb.deleted:
        assert HTTP.get(c.url(f"/{cont}/{name}"), headers=c.h).status_code == 404
    account = []
    for cont in rb.containers():
        want = sorted(n for k, n in rb.objects if k == cont)
        r = HTTP.get(c.url(f"/{cont}"), headers=c.h, params={"format": "json"})
        assert r.status_code == 200, r.text
        assert [e["name"] for e in r.json()] == want, cont
        head = HTTP.head(c.url(f"/{cont}"), headers=c.h)
        size = sum(len(b) for (k, _), b in rb.objects.items() if k == cont)
        assert head.status_code == 204
        assert (head.headers["x-container-object-count"],
                head.headers["x-container-bytes-used"]) == (str(len(want)), str(size)), cont
        assert head.headers["x-container-meta-zrb"] == rb.meta
        account.append({"name": cont, "count": len(want), "bytes": size})
    r = HTTP.get(c.url(""), headers=c.h, params={"format": "json"})
    assert r.status_code == 200
    assert [{k: e[k] for k in ("name", "count", "bytes")} for e in r.json()] == account


def check_placement(rb: Rebalance) -> None:
    """Every object (or tombstone), container and account database is on exactly the
    primaries of the current ring, each copy whole and up to date; the other devices
    hold nothing of those partitions."""
    c, ring = rb.c, rb.ring()
    ids = {rb.dev_id(srv): srv for srv in c.servers}
    for (cont, name), body in rb.objects.items():
        part, _h = c.where(cont, name)
        primaries = {d.id for d in ring.primaries(part)}
        assert len(primaries) == ring.replicas
        for dev_id, srv in ids.items():
            f = c.on_disk(srv, cont, name)
            if dev_id in primaries:
                assert _intact(f, body), (cont, name, dev_id)
            else:
                assert f is None, (cont, name, dev_id)
    for cont, name in rb.deleted:
        part, _h = c.where(cont, name)
        primaries = {d.id for d in ring.primaries(part)}
        for dev_id, srv in ids.items():
            f = c.on_disk(srv, cont, name)
            assert (f is not None and f.kind == "tombstone") == (dev_id in primaries), \
                (cont, name, dev_id)
    for cont in [*rb.containers(), ""]:
        kind = "container" if cont else "account"
        part = ring.partition(c.account, cont)
        primaries = {d.id for d in ring.primaries(part)}
        for dev_id, srv in ids.items():
            db = Db(db_path(srv.root / "dev", kind, part,
                            hash_path(ring.salt, c.account, cont)), kind)
            assert db.exists() == (dev_id in primaries), (kind, cont, dev_id)
            if not db.exists():
                continue
            info = db.info()
            if cont:
                live = [b for (k, _), b in rb.objects.items() if k == cont]
                assert (info["objects"], info["bytes"]) == (len(live), sum(map(len, live)))
                assert rb.meta in live_meta(info["meta"]).values()
            else:
                assert info["containers"] == len(rb.containers())
    for dev_id, srv in ids.items():  # partitions a device is not a primary of: empty
        for part in srv.device.partitions():
            if dev_id not in {d.id for d in ring.primaries(part)}:
                assert srv.device.hashes(part) == {}, (dev_id, part)


def test_two_servers_hold_every_partition(rb: Rebalance) -> None:
    c, ring = rb.c, rb.ring()
    account_part = ring.partition(c.account)
    for i in range(ring.partitions):  # container i's database is in partition i
        cont = _name_in(i, lambda n: ring.partition(c.account, n))
        r = HTTP.put(c.url(f"/{cont}"), headers={**c.h, "X-Container-Meta-Zrb": rb.meta})
        assert r.status_code == 201, r.text
        # and one of its objects too (the objects cover every partition)
        inside = _name_in(i, lambda n: ring.partition(c.account, cont, n))  # noqa: B023
        for name in (inside, f"dir/zrb-{i}"):
            body = os.urandom(1000 + 37 * i)
            assert HTTP.put(c.url(f"/{cont}/{name}"), headers=c.h,
                            content=body).status_code == 201
            rb.objects[(cont, name)] = body
    assert {ring.partition(c.account, k, n) for k, n in rb.objects} == set(
        range(ring.partitions))
    assert 0 <= account_part < ring.partitions
    check_reads(rb)
    check_placement(rb)


def test_third_server_rebalances_and_the_replicator_fills_it(rb: Rebalance) -> None:
    c = rb.c
    assert rb.objects, "the two-server step ran first"
    before = rb.ring()
    new = rb.add_server()
    after = rb.rebuild(3)
    new.start()
    assert (after.replicas, len(after.devices), after.version) == (3, 3, before.version + 1)
    assert after.salt == before.salt
    assert after.assignment[:2] == before.assignment  # nothing moved: one copy added
    assert set(after.assignment[2]) == {rb.dev_id(new)}
    # before any replication: the proxy reads from the old copies
    check_reads(rb)
    # writes meanwhile go to the new ring's primaries (the new server's container
    # databases do not exist yet: the listing update waits in a pending record)
    cont = rb.containers()[0]
    body = os.urandom(4321)
    assert HTTP.put(c.url(f"/{cont}/zrb-late"), headers=c.h, content=body).status_code == 201
    rb.objects[(cont, "zrb-late")] = body
    gone = next(k for k in rb.objects if k[0] == rb.containers()[1])
    assert HTTP.delete(c.url(f"/{gone[0]}/{gone[1]}"), headers=c.h).status_code == 204
    del rb.objects[gone]
    rb.deleted.add(gone)
    check_reads(rb)
    rb.replicate()
    check_placement(rb)
    check_reads(rb)
    # the new server alone serves everything
    old = [s for s in c.servers if s is not new]
    for srv in old:
        srv.stop()
    try:
        check_reads(rb)
    finally:
        for srv in old:
            srv.start()


def test_fourth_server_moves_partitions_off_the_old_servers(rb: Rebalance) -> None:
    assert rb.ring().replicas == 3, "the three-server step ran first"
    before = rb.ring()
    new = rb.add_server()
    after = rb.rebuild(3)
    new.start()
    assert (after.replicas, len(after.devices)) == (3, 4)
    moved = {(part, d.id) for part in range(after.partitions)
             for d in before.primaries(part)
             if d.id not in {n.id for n in after.primaries(part)}}
    assert moved, "the new device took partitions over"
    assert any(rb.dev_id(new) in {d.id for d in after.primaries(p)} for p, _ in moved)
    # each moved partition holds an object on the device it leaves
    for part, dev_id in moved:
        srv = next(s for s in rb.c.servers if rb.dev_id(s) == dev_id)
        assert srv.device.hashes(part), (part, dev_id)
    check_reads(rb)
    # the window before the replicator's pass: a container POST (metadata) and an object
    # PUT on a container whose database moves to the new device (its first primary
    # where there is one); neither makes a near-empty database there
    c, new_id = rb.c, rb.dev_id(new)
    where = {cont: [d.id for d in after.primaries(after.partition(c.account, cont))]
             for cont in rb.containers()}
    late = sorted((ids.index(new_id), cont) for cont, ids in where.items() if new_id in ids)
    assert late, "the new device is a primary of a container database"
    cont = late[0][1]
    assert HTTP.post(c.url(f"/{cont}"), headers={
        **c.h, "X-Container-Meta-Zdg": "late"}).status_code == 204
    body = os.urandom(777)
    assert HTTP.put(c.url(f"/{cont}/zdg-late"), headers=c.h, content=body).status_code == 201
    rb.objects[(cont, "zdg-late")] = body
    check_reads(rb)
    assert HTTP.head(c.url(f"/{cont}"), headers=c.h).headers["x-container-meta-zdg"] == "late"
    part = after.partition(c.account, cont)
    assert not Db(db_path(new.root / "dev", "container", part,
                          hash_path(after.salt, c.account, cont)), "container").exists()
    rb.replicate()
    check_placement(rb)
    for part, dev_id in moved:
        srv = next(s for s in rb.c.servers if rb.dev_id(s) == dev_id)
        assert srv.device.hashes(part) == {}
    check_reads(rb)
    assert HTTP.head(c.url(f"/{cont}"), headers=c.h).headers["x-container-meta-zdg"] == "late"
