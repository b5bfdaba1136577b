"""Server tags (microversion 2.26): the rules a tag follows, reading and changing a
server's tags (kept in ``Server.tags``), and the four tag filters of a server listing.

Nova's rules: a tag is a non-empty string of at most 60 characters without '/' or ',';
a server has at most 50; tags change only while the server's vm_state is active, paused,
suspended or stopped (a task running does not matter), else 409. Adding a tag the server
already has is a 204 even at the limit (Nova checks the limit first and answers 400).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from stratus.common.auth import AuthContext
from stratus.common.errors import BadRequest, Conflict
from stratus.common.timeutil import utcnow
from stratus.compute import models as m

if TYPE_CHECKING:
    from stratus.compute.core import ComputeCore

MAX_TAGS = 50
MAX_TAG_LENGTH = 60
STEADY_STATES = ("active", "paused", "suspended", "stopped")
FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
RULE = (f"a tag is a non-empty string of at most {MAX_TAG_LENGTH} characters without '/' "
        "or ','")


def valid_tag(tag: object) -> bool:
    return isinstance(tag, str) and 1 <= len(tag) <= MAX_TAG_LENGTH \
        and "/" not in tag and "," not in tag


def check_tag(tag: object) -> str:
    """``tag`` when it follows the rules, else 400 saying them."""
    if not valid_tag(tag):
        raise BadRequest(f"Tag {tag!r} is invalid: {RULE}.")
    assert isinstance(tag, str)
    return tag


def check_tag_list(value: object, what: str = "tags") -> list[str]:
    """A list of tags (a replace or a create): each valid, at most 50 (duplicates kept
    once, in their first order)."""
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute {what}: a list of tags is "
                         f"expected ({RULE}).")
    for tag in value:
        if not valid_tag(tag):
            raise BadRequest(f"Invalid input for field/attribute {what}: tag {tag!r} is "
                             f"invalid: {RULE}.")
    tags = list(dict.fromkeys(value))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS} "
                         f"({len(tags)} given).")
    return tags


def tags_of(core: ComputeCore, ctx: AuthContext, sid: str) -> list[str]:
    """The server's tags (404 for a server the caller cannot see)."""
    with core.db.session() as s:
        return list(core.server(s, ctx, sid).tags or [])


def change_tags(core: ComputeCore, ctx: AuthContext, sid: str,
                change: Callable[[list[str]], list[str]], action: str) -> list[str]:
    """Replace the server's tags with ``change(current)`` (which may raise) in one
    transaction; 409 unless the server's vm_state allows it. Returns the new tags."""
    def work(s: Session) -> list[str]:
        srv = core.server(s, ctx, sid)
        if srv.vm_state not in STEADY_STATES:  # as Nova: the vm_state alone counts
            raise Conflict(f"Cannot '{action}' instance {srv.id} while it is in vm_state "
                           f"{srv.vm_state}: tags change only when it is "
                           f"{', '.join(STEADY_STATES)}.")
        new = change(list(srv.tags or []))
        if len(new) > MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}.")
        srv.tags = new or None
        srv.updated_at = utcnow()
        return new

    return core.transaction(work)


def filter_values(raw: str, key: str) -> set[str]:
    """The tags of one listing filter (comma-separated); 400 for an empty one."""
    tags = {t for t in raw.split(",") if t}
    if not tags:
        raise BadRequest(f"Invalid filter {key}: a comma-separated list of tags is expected.")
    return tags


def listing_filters(q: Mapping[str, str]) -> list[Callable[[m.Server], bool]]:
    """The tests of a listing's tag filters (2.26): ``tags`` all of them, ``tags-any``
    at least one, ``not-tags`` not all of them, ``not-tags-any`` none of them."""
    tests: list[Callable[[m.Server], bool]] = []
    if "tags" in q:
        every = filter_values(q["tags"], "tags")
        tests.append(lambda r: every <= set(r.tags or []))
    if "tags-any" in q:
        some = filter_values(q["tags-any"], "tags-any")
        tests.append(lambda r: bool(some & set(r.tags or [])))
    if "not-tags" in q:
        not_all = filter_values(q["not-tags"], "not-tags")
        tests.append(lambda r: not not_all <= set(r.tags or []))
    if "not-tags-any" in q:
        none_of = filter_values(q["not-tags-any"], "not-tags-any")
        tests.append(lambda r: not none_of & set(r.tags or []))
    return tests
