"""Time and identifier helpers every service shares.

The databases store naive UTC datetimes. The APIs show them as ISO 8601 with
a ``Z``: whole seconds (Nova, Neutron, Glance) or with microseconds
(Keystone's token expiry).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow(precise: bool = False) -> datetime:
    """Now, as naive UTC: whole seconds, or to the microsecond when ``precise``."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now if precise else now.replace(microsecond=0)


def from_timestamp(ts: float) -> datetime:
    """A POSIX timestamp as naive UTC."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def isotime(value: datetime | float | None, precise: bool = False) -> str | None:
    """``2026-01-02T03:04:05Z`` (or ``...05.123456Z`` when ``precise``) for a naive
    UTC datetime or a POSIX timestamp; None stays None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = from_timestamp(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A new resource id in the dashed UUID form Nova, Neutron and Glance use."""
    return str(uuid.uuid4())


def new_hex_id() -> str:
    """A new resource id in the 32-hex-digit form Keystone uses."""
    return uuid.uuid4().hex
