"""The object ring: balanced placement in distinct zones, a rebalance that keeps what
fits, the document's contract, and ``stratus-manage ring build/show``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stratus import manage
from stratus.contracts.object import ContractError, Ring
from stratus.object.ring import ensure, load

pytestmark = [pytest.mark.unit]


def specs(root: Path, n: int) -> list[str]:
    return [f"h{i}:{i}:{root}/d{i}" for i in range(n)]


def test_replicas_in_distinct_zones_and_balanced(tmp_path: Path) -> None:
    changed, ring = ensure(tmp_path / "r.json", specs(tmp_path, 4), 8, 3)
    assert changed and ring.replicas == 3
    for part in range(ring.partitions):
        zones = {d.zone for d in ring.primaries(part)}
        assert len(zones) == 3
        assert not {d.id for d in ring.handoffs(part)} & {d.id for d in ring.primaries(part)}
    load_per_dev = Counter(dev for row in ring.assignment for dev in row)
    assert max(load_per_dev.values()) - min(load_per_dev.values()) <= 1
    assert ensure(tmp_path / "r.json", specs(tmp_path, 4), 8, 3)[0] is False


def test_adding_a_device_moves_only_its_share(tmp_path: Path) -> None:
    _, before = ensure(tmp_path / "r.json", specs(tmp_path, 3), 8, 3)
    _, after = ensure(tmp_path / "r.json", specs(tmp_path, 4), 8, 3)
    moved = sum(a != b for ra, rb in zip(before.assignment, after.assignment, strict=True)
                for a, b in zip(ra, rb, strict=True))
    total = 3 * 256
    assert after.version == before.version + 1
    assert moved <= total // 4 + 3  # the new device's share, no more


def test_a_new_device_takes_its_full_share(tmp_path: Path) -> None:
    """Each old device gives up only its excess, one replica per partition, so the new
    device (which can hold one replica of a partition) gets its whole share: 4 and 5
    devices for 3 replicas of 256 partitions (it used to get a third of it)."""
    _, ring = ensure(tmp_path / "r.json", specs(tmp_path, 3), 8, 3)
    for n in (4, 5):
        before = ring
        _, ring = ensure(tmp_path / "r.json", specs(tmp_path, n), 8, 3)
        counts = Counter(dev for row in ring.assignment for dev in row)
        share = 3 * 256 / n
        assert all(share - 3 <= c <= share + 1 for c in counts.values()), counts
        moved = sum(a != b for ra, rb in zip(before.assignment, ring.assignment, strict=True)
                    for a, b in zip(ra, rb, strict=True))
        assert moved == counts[n - 1]  # only what the new device took over
        for part in range(ring.partitions):
            assert len({d.zone for d in ring.primaries(part)}) == 3


def test_a_replica_added_with_a_device_keeps_every_placement(tmp_path: Path) -> None:
    _, before = ensure(tmp_path / "r.json", specs(tmp_path, 2), 4, 2)
    _, after = ensure(tmp_path / "r.json", specs(tmp_path, 3), 4, 3)
    assert after.assignment[:2] == before.assignment
    assert after.assignment[2] == [2] * 16


def test_fewer_devices_than_replicas(tmp_path: Path) -> None:
    _, ring = ensure(tmp_path / "r.json", specs(tmp_path, 1), 4, 3)
    assert ring.replicas == 1


def test_contract_names_the_bad_field(tmp_path: Path) -> None:
    _, ring = ensure(tmp_path / "r.json", specs(tmp_path, 2), 2, 2)
    doc = ring.to_dict()
    assert Ring.from_dict(doc).to_dict() == doc
    doc["devices"][1]["weight"] = "heavy"
    with pytest.raises(ContractError, match=r"ring\.devices\[1\]\.weight"):
        Ring.from_dict(doc)
    with pytest.raises(ContractError, match=r"ring\.assignment"):
        Ring.from_dict({**ring.to_dict(), "assignment": [[0], [1]]})


def test_manage_ring_build_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "stratus.conf"
    conf.write_text(f"[object]\nring_file = {tmp_path}/ring.json\n")
    monkeypatch.setenv("STRATUS_CONFIG_FILE", str(conf))
    args = ["ring", "build", "--part-power", "4"]
    for spec in specs(tmp_path, 3):
        args += ["--device", spec]
    assert manage.main(args) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert manage.main(args) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert manage.main(["ring", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [d["partitions"] for d in shown["devices"]] == [16, 16, 16]
    assert load(tmp_path / "ring.json").part_power == 4
    assert manage.main(["ring", "build", "--device", "bad"]) == 1
