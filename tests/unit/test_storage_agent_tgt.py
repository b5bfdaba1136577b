"""tgt.py with a recording runner: tgtadm output parsed, an export's commands, the CHAP journal."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stratus.agent.runner import CommandError
from stratus.agent.storage.tgt import (
    AccountJournal,
    Target,
    Tgt,
    lun_too_small,
    parse_accounts,
    parse_targets,
)
from stratus.contracts.volume import ExportSpec

pytestmark = pytest.mark.unit

SHOW = """Target 1: iqn.2010-10.org.stratus:tv-h:att1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.2010-10.org.stratus:c1 alias: c1
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Backing store type: null
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 67 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /pool/tv-volume-v1.raw
            Backing store flags:
    Account information:
        user1
    ACL information:
        iqn.2010-10.org.stratus:c1
Target 4: iqn.other:x
    System information:
        Driver: iscsi
    LUN information:
        LUN: 0
            Backing store path: None
    Account information:
    ACL information:
        ALL
        192.168.0.0/24
"""
IQN = "iqn.2010-10.org.stratus:tv-h:att1"


def test_parse_targets_and_accounts():
    t1, t4 = parse_targets(SHOW)
    assert (t1.tid, t1.iqn, t1.luns, t1.accounts, t1.acls) == (
        1, IQN, {1: "/pool/tv-volume-v1.raw"}, ["user1"], ["iqn.2010-10.org.stratus:c1"])
    assert t1.sizes == {1: 67}
    assert (t4.tid, t4.luns, t4.accounts, t4.acls) == (4, {}, [], ["ALL", "192.168.0.0/24"])
    assert parse_accounts("Account list:\n    user1\n    user2\n") == {"user1", "user2"}
    assert parse_accounts("Account list:\n") == set()


class Rec:
    """A runner that records tgtadm calls and answers nothing."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail: str | None = None

    def run(self, argv: Sequence[str], check: bool = True, input: str | None = None,
            wrap: bool = True) -> str:
        self.calls.append(list(argv))
        if self.fail and self.fail in argv:
            raise CommandError(argv, 22, "tgtadm: can't find the target")
        return ""


def ops(rec: Rec) -> list[str]:
    out = []
    for argv in rec.calls:
        i = argv.index("--op")
        out.append(f"{argv[i + 1]} {argv[i + 3]}")
    return out


def spec(**kw: Any) -> ExportSpec:
    base: dict[str, Any] = dict(attachment_id="att1", volume_id="v1", target_iqn=IQN,
                                   auth_username="user1", auth_password="pw-0123456789ab",
                                   lun=1, initiator="iqn.2010-10.org.stratus:c1")
    base.update(kw)
    return ExportSpec(**base)


@pytest.fixture
def tgt(tmp_path: Path) -> tuple[Tgt, Rec, AccountJournal]:
    rec: Any = Rec()
    journal = AccountJournal(tmp_path / "tv-tgt-accounts.json")
    return Tgt(rec, "iqn.2010-10.org.stratus:tv-h", journal, control_port=71), rec, journal


def test_new_export_commands_in_order_and_journal_first(tgt):
    t, rec, journal = tgt
    t.ensure(spec(), "/pool/tv-volume-v1.raw", [Target(2, "iqn.other:y")], set())
    assert ops(rec) == ["new target", "new logicalunit", "new account", "bind account",
                        "bind target"]
    assert all(c[:3] == ["tgtadm", "-C", "71"] for c in rec.calls)
    assert "--tid" in rec.calls[0] and rec.calls[0][rec.calls[0].index("--tid") + 1] == "3"
    assert rec.calls[-1][-2:] == ["--initiator-name", "iqn.2010-10.org.stratus:c1"]
    assert "user1" in json.loads(journal.path.read_text())


def test_existing_export_as_described_runs_nothing(tgt):
    t, rec, _ = tgt
    t.ensure(spec(), "/pool/tv-volume-v1.raw", [], set())
    rec.calls.clear()
    t.ensure(spec(), "/pool/tv-volume-v1.raw", parse_targets(SHOW)[:1], {"user1"})
    assert rec.calls == []


def test_changes_are_fixed_in_place_or_by_recreating(tgt):
    t, rec, _ = tgt
    t.ensure(spec(), "/pool/tv-volume-v1.raw", [], set())
    rec.calls.clear()
    # any initiator now, and a new password: ACL rebound, account recreated
    t.ensure(spec(initiator=None, auth_password="other-0123456789"), "/pool/tv-volume-v1.raw",
             parse_targets(SHOW)[:1], {"user1"})
    assert ops(rec) == ["delete account", "new account", "bind account", "unbind target",
                        "bind target"]
    assert rec.calls[-1][-2:] == ["-I", "ALL"]
    rec.calls.clear()
    # another backing file: the target is made again
    t.ensure(spec(initiator=None, auth_password="other-0123456789"), "/pool/other.raw",
             parse_targets(SHOW)[:1], {"user1"})
    assert ops(rec)[:3] == ["delete target", "new target", "new logicalunit"]


def test_foreign_target_name_is_refused(tgt):
    t, rec, _ = tgt
    with pytest.raises(CommandError, match="not under this host's iqn prefix"):
        t.ensure(spec(target_iqn="iqn.other:x"), "/p", [], set())
    assert rec.calls == []
    assert list(t.ours(parse_targets(SHOW))) == [IQN]


def test_prune_deletes_only_journaled_accounts(tgt):
    t, rec, journal = tgt
    journal.save({"user1": "h", "gone": "h", "kept": "h"})
    gone = t.prune_accounts({"kept"}, accounts={"user1", "kept", "someone-elses"})
    assert gone == ["gone", "user1"]
    assert ops(rec) == ["delete account"] and rec.calls[0][-1] == "user1"
    assert set(journal.load()) == {"kept"}


def test_delete_of_a_missing_target_is_fine(tgt):
    t, rec, _ = tgt
    rec.fail = "delete"
    t.delete_target(9)


def test_lun_smaller_than_its_file_is_made_again_on_the_same_target(tgt, tmp_path):
    """An in-use extend: the file grew, tgt still shows the old size; the LUN (only) is
    deleted and made again, the target, account and ACL stay."""
    t, rec, _ = tgt
    backing = tmp_path / "tv-volume-v1.raw"
    backing.write_bytes(b"")
    os.truncate(backing, 64 * 2**20)  # tgt shows 67 MB for it: unchanged

    def target() -> list[Target]:
        return parse_targets(SHOW.replace("/pool/tv-volume-v1.raw", str(backing)))[:1]
    t.ensure(spec(), str(backing), target(), {"user1"})  # the journal learns the account
    rec.calls.clear()
    t.ensure(spec(), str(backing), target(), {"user1"})
    assert rec.calls == []
    os.truncate(backing, 128 * 2**20)
    t.ensure(spec(), str(backing), target(), {"user1"})
    assert ops(rec) == ["delete logicalunit", "new logicalunit"]
    assert rec.calls[1][-2:] == ["-b", str(backing)]
    # a kill -9 between the two: the target without its LUN gets the LUN back, in place
    rec.calls.clear()
    bare = parse_targets(SHOW.replace("/pool/tv-volume-v1.raw", str(backing)))[0]
    bare.luns.clear()
    t.ensure(spec(), str(backing), [bare], {"user1"})
    assert ops(rec) == ["new logicalunit"]


def test_lun_size_rounding_is_not_an_extend():
    gib = 2**30
    assert not lun_too_small(1073, gib) and not lun_too_small(1074, gib)
    assert lun_too_small(1073, 2 * gib)
    assert not lun_too_small(None, 2 * gib)
