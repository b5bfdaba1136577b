"""cloud_keypair's decision logic against a fake compute API: check mode first, then real."""

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
    return compute_utils("stratus_keypair")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKs9smodsmodsmod smod@test"


def params(**kw: Any) -> dict[str, Any]:
    base = {"name": "smod-key", "state": "present", "public_key": None,
            "public_key_file": None, "type": "ssh"}
    base.update(kw)
    return base


def run(cu: Any, cloud: FakeCloud, p: dict[str, Any], check: bool) -> dict[str, Any]:
    return dict(cu.KeypairConvergence(cloud.compute, p, check).run())


def check_then_run(cu: Any, cloud: FakeCloud, p: dict[str, Any]) -> dict[str, Any]:
    checked = run(cu, cloud, p, True)
    assert cloud.writes == []
    real = run(cu, cloud, p, False)
    assert checked["changed"] and real["changed"] and checked["diff"] == real["diff"]
    n = len(cloud.writes)
    again = run(cu, cloud, p, False)
    assert again["changed"] is False and cloud.writes[n:] == []
    assert "private_key" not in again
    return real


def test_import_from_a_file_then_nothing(cu: Any, tmp_path: Path) -> None:
    cloud = FakeCloud()
    path = tmp_path / "id.pub"
    path.write_text(KEY + "\n")
    result = check_then_run(cu, cloud, params(public_key_file=str(path)))
    assert cloud.writes == [("compute.create_keypair",
                             {"name": "smod-key", "type": "ssh", "public_key": KEY})]
    assert result["keypair"]["public_key"] == KEY and result["id"] == "smod-key"
    assert "private_key" not in result
    # The same key with another comment is the same key.
    same = run(cu, cloud, params(public_key=KEY.rsplit(" ", 1)[0] + " other"), False)
    assert same["changed"] is False


def test_generated_key_returns_the_private_key_once(cu: Any) -> None:
    cloud = FakeCloud()
    result = check_then_run(cu, cloud, params())
    assert result["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "private_key" not in result["keypair"]
    assert result["diff"]["after"]["generated"] is True


def test_another_key_under_the_name_fails(cu: Any) -> None:
    cloud = FakeCloud()
    run(cu, cloud, params(public_key=KEY), False)
    for check in (True, False):
        with pytest.raises(cu.StratusError, match="exists with another public key"):
            run(cu, cloud, params(public_key="ssh-ed25519 AAAAOTHER x"), check)


def test_unreadable_file_and_absent(cu: Any, tmp_path: Path) -> None:
    cloud = FakeCloud()
    with pytest.raises(cu.StratusError, match=r"Cannot read public_key_file .*nothing\.pub"):
        run(cu, cloud, params(public_key_file=str(tmp_path / "nothing.pub")), True)
    run(cu, cloud, params(public_key=KEY), False)
    del cloud.writes[:]
    result = check_then_run(cu, cloud, params(state="absent"))
    assert result["diff"]["before"]["name"] == "smod-key" and result["keypair"] is None
    assert cloud.writes == [("compute.delete_keypair", "smod-key")]
