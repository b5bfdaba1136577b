"""Applying whole nftables tables atomically, and only when they changed.

A rendered table carries a comment with the hash of its text; the table is
replaced (delete + add in one ``nft -f`` transaction) only when that hash
differs from what is loaded, so a resync never touches correct rules and
conntrack entries (established flows) survive any replace.
"""

from __future__ import annotations

import hashlib
import re

from stratus.agent.runner import Runner


def table_hash(runner: Runner, family: str, name: str, netns: str | None = None) -> str | None:
    """The hash comment of a loaded table ("" without one), or None when it is absent.

    (nft 1.0.6 leaves table comments out of its JSON output, so this reads the text.)
    """
    argv = ["nft", "-t", "list", "table", family, name]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    out = runner.run(argv, check=False)
    lines = out.splitlines()
    if not lines or not lines[0].startswith(f"table {family} {name}"):
        return None
    second = lines[1].strip() if len(lines) > 1 else ""
    match = re.fullmatch(r'comment "([^"]*)"', second)
    return match.group(1) if match else ""


def ensure_table(runner: Runner, family: str, name: str, body: str,
                 netns: str | None = None) -> bool:
    """Load ``table <family> <name> { <body> }`` unless identical; True when it changed."""
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()[:32]
    have = table_hash(runner, family, name, netns)
    if have == digest:
        return False
    script = ""
    if have is not None:
        script += f"delete table {family} {name}\n"
    script += f'table {family} {name} {{\n  comment "{digest}"\n{body}}}\n'
    argv = ["nft", "-f", "-"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    runner.run(argv, input=script)
    return True


def delete_table(runner: Runner, family: str, name: str, netns: str | None = None) -> None:
    if table_hash(runner, family, name, netns) is None:
        return
    argv = ["nft", "delete", "table", family, name]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    runner.run(argv, check=False)
