"""Scheduler filters and weighers (pure), and atomic claims under concurrent creates
(SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from compute_api import (
    ALICE,
    CONTEXTS,
    IMAGE,
    FakeDownstream,
    concurrent_creates,
    concurrent_group_members,
    make_core,
)
from stratus.common.timeutil import utcnow
from stratus.compute import models as m
from stratus.compute import scheduler as sch
from stratus.compute.core import Settings
from stratus.compute.servers import CreateRequest, ServerFlow

pytestmark = pytest.mark.unit
R = sch.Ratios(cpu=2.0, ram=1.0, disk=1.0, reserved_memory_mb=512)


def host(name: str, **kw: Any) -> sch.HostRecord:
    base: dict[str, Any] = {"host": name, "availability_zone": "nova", "vcpus": 4,
                            "memory_mb": 4608, "local_gb": 40}
    return sch.HostRecord(**{**base, **kw})


def test_resource_filters_use_ratios_and_reserved_memory() -> None:
    h = host("a", claimed_vcpus=7, claimed_ram=3584)
    assert sch.select_hosts([h], sch.Request(vcpus=1, ram=512, disk=1), R)
    with pytest.raises(sch.NoValidHost, match="CoreFilter"):
        sch.select_hosts([h], sch.Request(vcpus=2, ram=1, disk=1), R)
    with pytest.raises(sch.NoValidHost, match="RamFilter"):
        sch.select_hosts([h], sch.Request(vcpus=1, ram=513, disk=1), R)
    with pytest.raises(sch.NoValidHost, match="DiskFilter"):
        sch.select_hosts([h], sch.Request(vcpus=1, ram=1, disk=41), R)


@pytest.mark.parametrize("record, request_kw, filter_name", [
    ({"enabled": False}, {}, "ComputeFilter (enabled)"),
    ({"alive": False}, {}, "ComputeFilter (alive)"),
    ({}, {"ignore_hosts": ["a"]}, "RetryFilter"),
    ({}, {"force_host": "b"}, "ForcedHostFilter"),
    ({"availability_zone": "az2"}, {"availability_zone": "nova"}, "AvailabilityZoneFilter"),
    ({}, {"image_properties": {"hw_architecture": "aarch64"}}, "ImagePropertiesFilter"),
    ({"virt_type": "kvm"}, {"image_properties": {"img_hv_type": "xen"}},
     "ImagePropertiesFilter"),
    ({}, {"group_policy": "affinity", "group_hosts": ["b"]}, "ServerGroupAffinityFilter"),
    ({}, {"group_policy": "anti-affinity", "group_hosts": ["a"]},
     "ServerGroupAffinityFilter"),
    ({"server_ids": frozenset({"s1"})}, {"different_host": ["s1"]}, "DifferentHostFilter"),
    ({}, {"same_host": ["s1"]}, "SameHostFilter"),
])
def test_each_filter_removes_the_host(record: dict[str, Any], request_kw: dict[str, Any],
                                      filter_name: str) -> None:
    q = sch.Request(vcpus=1, ram=1, disk=1, **request_kw)
    with pytest.raises(sch.NoValidHost, match=filter_name.replace("(", r"\(").replace(
            ")", r"\)")):
        sch.select_hosts([host("a", **record)], q, R)


def test_image_properties_accept_the_matching_host() -> None:
    q = sch.Request(vcpus=1, ram=1, disk=1,
                    image_properties={"hw_architecture": "amd64", "img_hv_type": "qemu"})
    assert [h.host for h in sch.select_hosts([host("a", virt_type="qemu")], q, R)] == ["a"]


def test_weighers_spread_pack_and_soft_policies() -> None:
    hosts = [host("full", claimed_ram=3000), host("empty"), host("half", claimed_ram=2000)]
    q = sch.Request(vcpus=1, ram=1, disk=1)
    assert [h.host for h in sch.select_hosts(hosts, q, R, "spread")] == [
        "empty", "half", "full"]
    assert [h.host for h in sch.select_hosts(hosts, q, R, "pack")] == [
        "full", "half", "empty"]
    soft = sch.Request(vcpus=1, ram=1, disk=1, group_policy="soft-affinity",
                       group_hosts=["full"])
    assert sch.select_hosts(hosts, soft, R)[0].host == "full"
    anti = sch.Request(vcpus=1, ram=1, disk=1, group_policy="soft-anti-affinity",
                       group_hosts=["empty"])
    assert sch.select_hosts(hosts, anti, R)[0].host == "half"


def test_concurrent_creates_never_overcommit_sqlite(tmp_path: Path) -> None:
    concurrent_creates(f"sqlite:///{tmp_path}/compute.sqlite", n=12, room=5)


def test_concurrent_creates_never_pass_the_quota(tmp_path: Path) -> None:
    fake = FakeDownstream()
    core = make_core(f"sqlite:///{tmp_path}/q.sqlite", Settings(quotas={
        "instances": 4, "cores": -1, "ram": -1, "key_pairs": -1, "server_groups": -1,
        "server_group_members": -1, "metadata_items": 128}), fake)
    now = utcnow()
    with core.db.session() as s:
        s.add(m.Flavor(id="1", name="m1", vcpus=1, ram=512, disk=1, ephemeral=0, swap=0,
                       rxtx_factor=1.0, is_public=True, extra_specs={}, created_at=now))
    flow = ServerFlow(core)
    ctx = dataclasses.replace(CONTEXTS[ALICE], token=ALICE)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def boot(i: int) -> None:
        barrier.wait()
        try:
            flow.create(ctx, CreateRequest(name=f"vm{i}", image_id=IMAGE, flavor_id="1",
                                           networks="none"))
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["OverLimit"] * 6 + ["ok"] * 4
    with core.db.session() as s:
        assert s.query(m.Server).count() == 4
        usage = s.get(m.ProjectUsage, "p-alice")
        assert usage is not None and usage.instances == 4
    core.db.dispose()


def test_concurrent_members_of_an_anti_affinity_group_get_distinct_hosts(
        tmp_path: Path) -> None:
    concurrent_group_members(f"sqlite:///{tmp_path}/g.sqlite")


def test_the_host_cache_follows_every_change_and_other_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cache.sqlite"
    core = make_core(url, Settings())
    other = make_core(url, Settings())  # another API worker on the same database
    now = utcnow()
    with core.db.session() as s:
        for i in range(3):
            s.add(m.ComputeHost(host=f"h{i}", hypervisor_hostname=f"h{i}",
                                availability_zone="nova", vcpus=8, memory_mb=16384,
                                local_gb=100, heartbeat_at=now, created_at=now))

    def cached() -> list[sch.HostRecord]:
        with core.db.session() as s:
            return sorted(core.host_records(s), key=lambda r: r.host)

    def fresh() -> list[sch.HostRecord]:
        with other.db.session() as s:
            return sorted(other.host_records(s, fresh=True), key=lambda r: r.host)

    assert cached() == fresh() and core.host_cache_loads == 1
    # This process's own claims, unclaims and bumps are re-read row by row: no full read.
    assert core.transaction(lambda s: core.claim(s, "h0", 2, 1024, 10))
    core.transaction(lambda s: core.unclaim(s, "h0", 1, 512, 5))
    core.transaction(lambda s: core.bump(s, "h1"))
    got = cached()
    assert got == fresh() and core.host_cache_loads == 1
    assert (got[0].claimed_vcpus, got[0].claimed_ram, got[0].claimed_disk) == (1, 512, 5)
    # A claim that is rolled back leaves the cache right.
    def claim_then_fail(s: Any) -> None:
        core.claim(s, "h2", 1, 512, 1)
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        core.transaction(claim_then_fail)
    assert cached() == fresh() and cached()[2].claimed_ram == 0
    # Another worker's claim is seen (one full read).
    assert other.transaction(lambda s: other.claim(s, "h2", 4, 4096, 20))
    loads = core.host_cache_loads
    assert cached()[2].claimed_ram == 4096 and core.host_cache_loads == loads + 1
    assert cached() == fresh() and core.host_cache_loads == loads + 1
    # Inventory from a heartbeat, disable and force-down through the API's paths are seen;
    # a dead host is seen without a full read (the heartbeat is read apart).
    from starlette.testclient import TestClient

    from compute_api import ComputeApi, fake_validate
    from stratus.compute.app import build_app

    with TestClient(build_app(other, fake_validate, public_url="http://c.test")) as client:
        api = ComputeApi(client, other, FakeDownstream())
        api.host("h1", vcpus=2, memory_mb=4096, local_gb=40, availability_zone="az9")
        api.ok("PUT", "/v2.1/os-services/disable", json={"host": "h0"})
        got = cached()
        assert (got[1].vcpus, got[1].memory_mb, got[1].availability_zone) == (2, 4096, "az9")
        assert got[0].enabled is False and got == fresh()
        with core.db.session() as s:
            h2 = s.query(m.ComputeHost).filter_by(host="h2").one()
            h2.heartbeat_at = now.replace(year=2000)
        loads = core.host_cache_loads
        got = cached()
        assert [r.alive for r in got] == [True, True, False] and got == fresh()
        assert core.host_cache_loads == loads
    core.db.dispose()
    other.db.dispose()


def test_stale_cache_never_fails_a_server_that_fits(tmp_path: Path) -> None:
    """The cache says the only host is full; the fresh read before giving up finds room."""
    core = make_core(f"sqlite:///{tmp_path}/stale.sqlite", Settings(reserved_host_memory_mb=0))
    now = utcnow()
    with core.db.session() as s:
        s.add(m.Flavor(id="1", name="m1", vcpus=1, ram=512, disk=1, ephemeral=0, swap=0,
                       rxtx_factor=1.0, is_public=True, extra_specs={}, created_at=now))
        s.add(m.ComputeHost(host="only", hypervisor_hostname="only", availability_zone="nova",
                            vcpus=4, memory_mb=1024, local_gb=10, heartbeat_at=now,
                            created_at=now, claimed_ram=1024))
    with core.db.session() as s:
        assert core.host_records(s)[0].claimed_ram == 1024
        # Freed behind the cache's back without a generation bump (as if a row was fixed
        # by hand): the fingerprint cannot see it.
        s.query(m.ComputeHost).update({"claimed_ram": 0})
    flow = ServerFlow(core)
    ctx = dataclasses.replace(CONTEXTS[ALICE], token=ALICE)
    sid = flow.create(ctx, CreateRequest(name="vm", image_id=IMAGE, flavor_id="1",
                                         networks="none"))[0]
    with core.db.session() as s:
        srv = s.get(m.Server, sid)
        assert srv is not None and srv.host == "only" and srv.vm_state == "building"
    core.db.dispose()


def test_same_and_different_host_hints_through_the_cache(tmp_path: Path) -> None:
    core = make_core(f"sqlite:///{tmp_path}/hints.sqlite", Settings())
    now = utcnow()
    with core.db.session() as s:
        s.add(m.Flavor(id="1", name="m1", vcpus=1, ram=512, disk=1, ephemeral=0, swap=0,
                       rxtx_factor=1.0, is_public=True, extra_specs={}, created_at=now))
        for i in range(3):
            s.add(m.ComputeHost(host=f"h{i}", hypervisor_hostname=f"h{i}",
                                availability_zone="nova", vcpus=8, memory_mb=16384,
                                local_gb=100, heartbeat_at=now, created_at=now))
    flow = ServerFlow(core)
    ctx = dataclasses.replace(CONTEXTS[ALICE], token=ALICE)

    def boot(**kw: Any) -> str:
        sid = flow.create(ctx, CreateRequest(name="vm", image_id=IMAGE, flavor_id="1",
                                             networks="none", **kw))[0]
        with core.db.session() as s:
            srv = s.get(m.Server, sid)
            assert srv is not None and srv.host
            return srv.host

    first = boot()
    with core.db.session() as s:
        first_id = s.query(m.Server).one().id
    for _ in range(3):
        assert boot(same_host=[first_id]) == first
    assert boot(different_host=[first_id]) != first
    core.db.dispose()
