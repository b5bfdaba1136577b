"""Policy overrides (stratus.common.policy): check strings, the file, and the
services' authorization calls consulting them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.common import policy
from stratus.common.auth import AuthContext
from stratus.common.errors import Forbidden
from stratus.compute.core import ComputeCore
from stratus.network.core import NetworkCore
from stratus.volume.core import VolumeCore

pytestmark = pytest.mark.unit

MEMBER = AuthContext(user_id="u", project_id="p", roles=frozenset({"member", "reader"}))
READER = AuthContext(user_id="r", project_id="p", roles=frozenset({"reader"}))
ADMIN = AuthContext(user_id="a", project_id="p", roles=frozenset({"admin"}))


@pytest.fixture(autouse=True)
def no_overrides() -> Iterator[None]:
    policy.load("")
    yield
    policy.load("")


def test_check_strings() -> None:
    assert policy.compile_check("@")(READER)
    assert not policy.compile_check("!")(ADMIN)
    assert policy.compile_check("role:member")(ADMIN)  # admin implies member
    assert not policy.compile_check("role:member")(READER)
    assert policy.compile_check("role:reader and not role:member or is_admin:True")(READER)
    assert not policy.compile_check("role:reader and not role:member")(MEMBER)
    assert policy.compile_check("role:auditor")(
        AuthContext(user_id="x", roles=frozenset({"auditor"})))


@pytest.mark.parametrize("text,named", [
    ('"create_network": "rule:(x"', "create_network"),
    ('"create_network": "project_id:%(project_id)s"', "create_network"),
    ("- a list", "mapping"),
    ('"create_network": 3', "create_network"),
])
def test_a_bad_file_is_refused_naming_the_rule(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        policy.parse_overrides(text)


def test_members_may_not_create_networks_once_overridden(tmp_path: Path) -> None:
    NetworkCore.require_member(MEMBER, "create_network")
    file = tmp_path / "zid-policy.yaml"
    file.write_text('create_network: "role:admin"\n')
    policy.load(str(file))
    with pytest.raises(Forbidden, match="create_network"):
        NetworkCore.require_member(MEMBER, "create_network")
    NetworkCore.require_member(ADMIN, "create_network")
    NetworkCore.require_member(MEMBER, "create_port")  # other rules keep their default
    policy.load(str(tmp_path / "gone.yaml"))  # a missing file: the defaults again
    NetworkCore.require_member(MEMBER, "create_network")


def test_compute_volume_and_identity_rules_are_overridable(tmp_path: Path) -> None:
    file = tmp_path / "zid-policy.yaml"
    file.write_text('"os_compute_api:servers:create": "!"\n'
                    '"volume_extension:types_manage": "role:member"\n'
                    '"identity:list_users": "role:reader"\n')
    policy.load(str(file))
    with pytest.raises(Forbidden):
        ComputeCore.require_member(MEMBER, "os_compute_api:servers:create")
    VolumeCore.require_admin(MEMBER, "volume_extension:types_manage")
    policy.enforce(READER, "identity:list_users", "admin")
    with pytest.raises(Forbidden):
        policy.enforce(READER, "identity:create_user", "admin")


def test_the_file_reaches_worker_processes_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "zid-policy.yaml"
    file.write_text('create_network: "!"\n')
    monkeypatch.setenv(policy.POLICY_ENV, "")  # restored (unset) after the test
    policy.use_file(str(file))
    policy._overrides = None  # a fresh worker: nothing loaded yet
    assert not policy.permits(ADMIN, "create_network", True)
