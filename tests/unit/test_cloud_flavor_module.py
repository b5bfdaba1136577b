"""cloud_flavor's decision logic against a fake compute API: check mode first, then real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compute_module_fakes import FakeCloud, collections_root, compute_utils

pytestmark = [pytest.mark.unit]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from collections_root(tmp_path_factory)


@pytest.fixture(scope="module")
def cu(collections_path: Path) -> Any:
    return compute_utils("stratus_flavor")

PROJECTS = {"smod-a": "a" * 32, "smod-b": "b" * 32}


def params(**kw: Any) -> dict[str, Any]:
    base = {"name": "smod.small", "state": "present", "id": None, "ram": 1024, "vcpus": 1,
            "disk": 10, "ephemeral": None, "swap": None, "is_public": None,
            "extra_specs": None, "projects": None, "recreate": False}
    base.update(kw)
    return base


def run(cu: Any, cloud: FakeCloud, p: dict[str, Any], check: bool) -> dict[str, Any]:
    return dict(cu.FlavorConvergence(cloud.compute, p, check,
                                     projects=lambda n: PROJECTS.get(n, n)).run())


def check_then_run(cu: Any, cloud: FakeCloud, p: dict[str, Any]) -> dict[str, Any]:
    n = len(cloud.writes)
    checked = run(cu, cloud, p, True)
    assert cloud.writes[n:] == []
    real = run(cu, cloud, p, False)
    assert checked["changed"] and real["changed"] and checked["diff"] == real["diff"]
    n = len(cloud.writes)
    again = run(cu, cloud, p, False)
    assert again["changed"] is False and cloud.writes[n:] == [], again["diff"]
    assert run(cu, cloud, p, True)["changed"] is False
    return real


def test_private_flavor_with_specs_and_access(cu: Any) -> None:
    cloud = FakeCloud()
    p = params(id="42", is_public=False, swap=512, ephemeral=2,
               extra_specs={"hw:cpu_policy": "dedicated", "n": 2}, projects=["smod-a"])
    result = check_then_run(cu, cloud, p)
    (_, attrs), (_, specs), (kind, project) = cloud.writes
    assert attrs == {"name": "smod.small", "ram": 1024, "vcpus": 1, "disk": 10, "id": "42",
                     "OS-FLV-EXT-DATA:ephemeral": 2, "swap": 512,
                     "os-flavor-access:is_public": False}
    assert specs == {"hw:cpu_policy": "dedicated", "n": "2"}
    assert (kind, project) == ("compute.addTenantAccess", "a" * 32)
    assert result["flavor"]["extra_specs"] == specs and result["id"] == "42"
    # Specs and access are reconciled in place.
    del cloud.writes[:]
    p2 = dict(p, extra_specs={"n": "3"}, projects=["smod-b"])
    result = check_then_run(cu, cloud, p2)
    assert result["diff"] == {
        "before": {"extra_specs": {"hw:cpu_policy": "dedicated", "n": "2"},
                   "projects": ["a" * 32]},
        "after": {"extra_specs": {"n": "3"}, "projects": ["b" * 32]}}
    assert cloud.writes == [("compute.set_extra_specs", {"n": "3"}),
                            ("compute.unset_extra_spec", "hw:cpu_policy"),
                            ("compute.addTenantAccess", "b" * 32),
                            ("compute.removeTenantAccess", "a" * 32)]


def test_a_different_size_fails_unless_recreate(cu: Any) -> None:
    cloud = FakeCloud()
    run(cu, cloud, params(id="7", extra_specs={"k": "v"}), False)
    for check in (True, False):
        with pytest.raises(cu.StratusError, match=r"differs: ram is 1024 \(wanted 2048\); "
                                                  "flavors cannot change. Set recreate: true"):
            run(cu, cloud, params(ram=2048), check)
    del cloud.writes[:]
    result = check_then_run(cu, cloud, params(ram=2048, recreate=True))
    assert [w[0] for w in cloud.writes] == [
        "compute.delete_flavor", "compute.create_flavor", "compute.set_extra_specs"]
    assert cloud.writes[1][1]["id"] == "7" and result["flavor"]["ram"] == 2048
    assert result["flavor"]["extra_specs"] == {"k": "v"}, "the old extra specs are kept"
    assert result["diff"]["before"]["ram"] == 1024 and result["diff"]["after"]["ram"] == 2048


def test_errors_and_absent(cu: Any) -> None:
    cloud = FakeCloud()
    with pytest.raises(cu.StratusError, match="ram is needed to create flavor"):
        run(cu, cloud, params(ram=None), True)
    with pytest.raises(cu.StratusError, match=r"Flavor ID 1 belongs to flavor 'm1\.tiny'"):
        run(cu, cloud, params(id="1"), True)
    run(cu, cloud, params(), False)
    with pytest.raises(cu.StratusError, match="is public; projects"):
        run(cu, cloud, params(projects=["smod-a"]), True)
    del cloud.writes[:]
    result = check_then_run(cu, cloud, params(state="absent"))
    assert result["flavor"] is None and [w[0] for w in cloud.writes] == ["compute.delete_flavor"]
