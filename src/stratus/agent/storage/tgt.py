"""The storage agent's iSCSI exports through ``tgtd`` (the userspace target), driven by ``tgtadm``.

One target per export (attachment), named by the volume API
(``<iqn_prefix>:<attachment id>``), with one LUN backed by the volume's pool file,
one CHAP account per export bound to it, and an initiator ACL (the attaching
host's iqn, or ``ALL``). ``tgtd`` is reached on its control port (``tgtadm -C``), so
several tgtd instances (a test's, a deploy's, the user's) live side by side; the
portal the targets listen on is tgtd's own start option (the role's).

Only targets whose name starts with this agent's ``iqn_prefix`` are ever touched.
tgt cannot show an account's password or tell who made an account, so the agent
keeps a small journal (a JSON file, written under a temporary name and renamed):
every account it creates is written there BEFORE it is created, with a hash of its
password; an account is ours only if the journal names it. A kill -9 at any moment
therefore leaves at most an account or target the next pass recognises and
removes or finishes.

tgt reads a LUN's size when the LUN is made and never again, so a LUN smaller than its
file (the volume was extended while exported) is deleted and made again on the same
target: the initiator's session stays (seen here with QEMU's initiator), and the next
READ CAPACITY answers the new size (the compute agent then has QEMU re-read it). A
command the initiator sends in the few milliseconds between the two tgtadm calls fails
and is retried by the initiator's error handling, as with Cinder's own tgt target update.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stratus.agent.runner import CommandError, Runner
from stratus.contracts.volume import ExportSpec

LOG = logging.getLogger(__name__)

ANY_INITIATOR = "ALL"


@dataclass
class Target:
    """A target as ``tgtadm --op show --mode target`` lists it."""

    tid: int
    iqn: str
    luns: dict[int, str] = field(default_factory=dict)  # lun -> backing store path (not LUN 0)
    sizes: dict[int, int] = field(default_factory=dict)  # lun -> size in MB (10**6 bytes)
    accounts: list[str] = field(default_factory=list)
    acls: list[str] = field(default_factory=list)  # initiator names and addresses ("ALL")


def parse_targets(text: str) -> list[Target]:
    """The targets of ``tgtadm --op show --mode target`` output."""
    targets: list[Target] = []
    cur: Target | None = None
    section = ""
    lun: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if indent == 0 and line.startswith("Target ") and ":" in line:
            head, _, iqn = line.partition(":")
            cur = Target(tid=int(head.split()[1]), iqn=iqn.strip())
            targets.append(cur)
            section, lun = "", None
            continue
        if cur is None:
            continue
        if indent == 4:
            section = line.rstrip(":")
            lun = None
            continue
        if section == "LUN information":
            if line.startswith("LUN:"):
                lun = int(line.split(":", 1)[1])
            elif line.startswith("Backing store path:") and lun:
                cur.luns[lun] = line.split(":", 1)[1].strip()
            elif line.startswith("Size:") and lun:
                mb = line.split(":", 1)[1].split()[0]
                if mb.isdigit():
                    cur.sizes[lun] = int(mb)
        elif section == "Account information" and indent == 8:
            cur.accounts.append(line.split()[0])
        elif section == "ACL information" and indent == 8:
            cur.acls.append(line)
    return targets


def parse_accounts(text: str) -> set[str]:
    """The user names of ``tgtadm --op show --mode account`` output."""
    return {line.split()[0] for line in text.splitlines()[1:] if line.strip()}


def lun_too_small(shown_mb: int | None, file_bytes: int) -> bool:
    """Whether a LUN tgt shows at ``shown_mb`` MB is smaller than its file (tgt shows whole
    MB of 10**6 bytes; a difference under one MB is rounding, not an extend)."""
    return shown_mb is not None and file_bytes - shown_mb * 1_000_000 >= 1_000_000


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _secret_hash(username: str, password: str) -> str:
    return hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()


def _is_name(acl: str) -> bool:
    """An initiator name ACL (iqn/eui/naa) rather than an address ACL."""
    return acl.split(".", 1)[0].lower() in ("iqn", "eui", "naa")


class AccountJournal:
    """The CHAP accounts this agent made: user name -> hash of user name and password."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def save(self, entries: dict[str, str]) -> None:
        tmp = self.path.with_name(self.path.name + ".part")
        tmp.write_text(json.dumps(entries, sort_keys=True))
        os.replace(tmp, self.path)


class Tgt:
    """This agent's targets in one tgtd (``control_port`` None: tgtd's default)."""

    def __init__(self, runner: Runner, iqn_prefix: str, journal: AccountJournal,
                 control_port: int | None = None):
        self.runner = runner
        self.iqn_prefix = iqn_prefix
        self.journal = journal
        self.control_port = control_port

    # --- tgtadm -------------------------------------------------------------------------
    def adm(self, *args: str) -> str:
        argv: list[str] = ["tgtadm"]
        if self.control_port is not None:
            argv += ["-C", str(self.control_port)]
        argv += ["--lld", "iscsi", *args]
        return self.runner.run(argv)

    def targets(self) -> list[Target]:
        """Every target of this tgtd (ours or not)."""
        return parse_targets(self.adm("--op", "show", "--mode", "target"))

    def ours(self, targets: Iterable[Target] | None = None) -> dict[str, Target]:
        """This agent's targets by iqn (the name starts with ``<iqn_prefix>:``)."""
        pre = self.iqn_prefix + ":"
        return {t.iqn: t for t in (self.targets() if targets is None else targets)
                if t.iqn.startswith(pre)}

    def accounts(self) -> set[str]:
        return parse_accounts(self.adm("--op", "show", "--mode", "account"))

    # --- one export ---------------------------------------------------------------------
    def owns(self, iqn: str) -> bool:
        return iqn.startswith(self.iqn_prefix + ":")

    def ensure(self, spec: ExportSpec, backing: str, all_targets: Sequence[Target],
               accounts: set[str]) -> None:
        """Make ``spec``'s target exist exactly as described (idempotent)."""
        if not self.owns(spec.target_iqn):
            raise CommandError(["tgtadm"], 1, f"target {spec.target_iqn} is not under this "
                               f"host's iqn prefix {self.iqn_prefix}:", temporary=False)
        cur = next((t for t in all_targets if t.iqn == spec.target_iqn), None)
        if cur is not None and cur.luns and set(cur.luns.items()) != {(spec.lun, backing)}:
            LOG.info("target %s exports %s, not %s as LUN %d: recreating it", cur.iqn,
                     cur.luns, backing, spec.lun)
            self.delete_target(cur.tid)
            cur = None
        if cur is None:
            tid = max((t.tid for t in all_targets), default=0) + 1
            self.adm("--op", "new", "--mode", "target", "--tid", str(tid),
                     "-T", spec.target_iqn)
            cur = Target(tid=tid, iqn=spec.target_iqn)
            self.adm("--op", "new", "--mode", "logicalunit", "--tid", str(tid),
                     "--lun", str(spec.lun), "-b", backing)
            cur.luns[spec.lun] = backing
            LOG.info("target %s (tid %d) exports %s", spec.target_iqn, tid, backing)
        elif not cur.luns:  # a kill -9 between a LUN's delete and its new: make it again
            self.adm("--op", "new", "--mode", "logicalunit", "--tid", str(cur.tid),
                     "--lun", str(spec.lun), "-b", backing)
            cur.luns[spec.lun] = backing
        elif lun_too_small(cur.sizes.get(spec.lun), _file_size(backing)):
            self.refresh_lun(cur, spec.lun, backing)
        self._ensure_account(spec, cur, accounts)
        self._ensure_acl(spec, cur)

    def refresh_lun(self, cur: Target, lun: int, backing: str) -> None:
        """Make the LUN again on its target so tgt reads the grown file's size (the
        target, its account, its ACL and the initiators' sessions stay)."""
        LOG.info("target %s: LUN %d is %s MB, its file %s is larger: making the LUN again",
                 cur.iqn, lun, cur.sizes.get(lun), backing)
        try:
            self.adm("--op", "delete", "--mode", "logicalunit", "--tid", str(cur.tid),
                     "--lun", str(lun))
        except CommandError as exc:
            if "can't find the logical unit" not in exc.stderr:
                raise
        self.adm("--op", "new", "--mode", "logicalunit", "--tid", str(cur.tid),
                 "--lun", str(lun), "-b", backing)

    def _ensure_account(self, spec: ExportSpec, cur: Target, accounts: set[str]) -> None:
        user = spec.auth_username
        journal = self.journal.load()
        want = _secret_hash(user, spec.auth_password)
        if user not in accounts or journal.get(user) != want:
            if journal.get(user) != want:
                journal[user] = want  # intent first: a crash leaves an account we know
                self.journal.save(journal)
            if user in accounts:  # a changed password: tgt cannot update one in place
                self.adm("--op", "delete", "--mode", "account", "--user", user)
                cur.accounts = [a for a in cur.accounts if a != user]
            self.adm("--op", "new", "--mode", "account", "--user", user,
                     "--password", spec.auth_password)
            accounts.add(user)
        for other in [a for a in cur.accounts if a != user]:
            self.adm("--op", "unbind", "--mode", "account", "--tid", str(cur.tid),
                     "--user", other)
        if user not in cur.accounts:
            self.adm("--op", "bind", "--mode", "account", "--tid", str(cur.tid), "--user", user)

    def _acl_args(self, acl: str) -> list[str]:
        return ["--initiator-name", acl] if _is_name(acl) else ["-I", acl]

    def _ensure_acl(self, spec: ExportSpec, cur: Target) -> None:
        want = spec.initiator or ANY_INITIATOR
        for acl in cur.acls:
            if acl != want:
                self.adm("--op", "unbind", "--mode", "target", "--tid", str(cur.tid),
                         *self._acl_args(acl))
        if want not in cur.acls:
            self.adm("--op", "bind", "--mode", "target", "--tid", str(cur.tid),
                     *self._acl_args(want))

    def delete_target(self, tid: int) -> None:
        """Remove a target with its LUNs and sessions (its accounts stay: see prune)."""
        try:
            self.adm("--op", "delete", "--mode", "target", "--tid", str(tid), "--force")
        except CommandError as exc:
            if "can't find the target" not in exc.stderr:
                raise

    def prune_accounts(self, keep: set[str], accounts: set[str] | None = None) -> list[str]:
        """Delete the accounts this agent made that no export needs; returns them."""
        journal = self.journal.load()
        present = self.accounts() if accounts is None else accounts
        gone: list[str] = []
        for user in sorted(set(journal) - keep):
            if user in present:
                self.adm("--op", "delete", "--mode", "account", "--user", user)
            journal.pop(user)
            gone.append(user)
        if gone:
            self.journal.save(journal)
        return gone
