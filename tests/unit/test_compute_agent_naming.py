"""The compute agent's ownership rule (issue 16): the domains, taps and libvirt secrets it
names carry its deploy prefix, and an object with another prefix, or with none, is never
treated as its own (so never changed or removed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.agent.compute import naming
from stratus.agent.compute.virt.base import InstanceSpec
from stratus.agent.compute.virt.domain_xml import build_domain, server_id_of, to_string
from stratus.contracts.network import ModelError

pytestmark = pytest.mark.unit

SID = "3f0e4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b"
PORT = "1ba43184-e0aa-4bbb-8ccc-000000000001"
INSTANCES = "/var/lib/stratus/instances"


def domain_xml(name: str, server_id: str = SID, instances: str = INSTANCES) -> str:
    spec = InstanceSpec(server_id, "x", 1, 64, 0, "", "qcow2")
    return to_string(build_domain(spec, domain_name=name, virt_type="qemu",
                                  disk_path=f"{instances}/{server_id}/disk",
                                  config_drive_path=None,
                                  console_path=f"{instances}/{server_id}/console.log"))


def owner(name: str, xml: str, prefix: str = "st-instance-",
          instances: str | Path = INSTANCES) -> str | None:
    return naming.server_of_domain(name, server_id_of(xml), xml, prefix=prefix,
                                   instances_path=instances)


def test_the_domain_prefix_derives_from_the_deploy_prefix() -> None:
    assert naming.default_domain_prefix("st") == "st-instance-"
    assert naming.domain_prefix("", "t16n") == "t16n-instance-"
    assert naming.domain_prefix("custom-", "st") == "custom-"
    with pytest.raises(ModelError, match="deploy_prefix"):
        naming.default_domain_prefix("Bad")


def test_a_domain_of_this_deploy_is_its_own() -> None:
    name = "st-instance-" + SID
    assert owner(name, domain_xml(name)) == SID
    assert owner(name, domain_xml(name), instances=Path(INSTANCES + "/")) == SID


@pytest.mark.parametrize("name", [
    "instance-" + SID,        # no deploy prefix (an earlier release's or Nova's default)
    "t16n-instance-" + SID,   # another deploy's prefix
    "s-instance-" + SID,      # a prefix that is a prefix of ours
    "stx-instance-" + SID,    # ours is a prefix of it
])
def test_a_domain_with_another_prefix_or_none_is_never_its_own(name: str) -> None:
    assert owner(name, domain_xml(name)) is None


def test_same_prefix_but_not_stratus_or_another_server_or_elsewhere_is_not_its_own() -> None:
    name = "st-instance-" + SID
    assert owner(name, f"<domain><name>{name}</name></domain>") is None  # no metadata
    other = SID[:-1] + "0"
    assert owner(name, domain_xml(name, server_id=other)) is None  # metadata names another
    # another deploy's instances path (same prefix chosen by hand)
    assert owner(name, domain_xml(name, instances="/tmp/other/instances")) is None
    assert owner(name, domain_xml(name, instances=INSTANCES + "2")) is None
    assert owner(name, domain_xml(name), prefix="") is None


def test_taps_carry_the_deploy_prefix_within_15_characters() -> None:
    assert naming.tap("st", PORT) == "st-tp1ba43184e0"
    assert naming.tap("t16n", PORT).startswith("t16n-tp")
    assert all(len(naming.tap(p, PORT)) <= 15 for p in ("a", "st", "t16n"))


def test_libvirt_secrets_are_named_and_owned_by_the_deploy_prefix() -> None:
    usage = naming.secret_usage("st", "volume", "v1")
    assert usage == "st-volume-v1"
    assert naming.owns_secret(usage, "st")
    for foreign in ("t16n-volume-v1", "volume-v1", "s-volume-v1", "stx-volume-v1", "", None,
                    "st"):
        assert not naming.owns_secret(foreign, "st"), foreign
    with pytest.raises(ValueError, match="kind"):
        naming.secret_usage("st", "vol-ume", "v1")
    with pytest.raises(ModelError, match="deploy_prefix"):
        naming.secret_usage("ST", "volume", "v1")
