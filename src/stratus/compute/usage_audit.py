"""os-instance_usage_audit_log: what the periodic "instance usage audit" of each compute
host did in the last completed audit period (Nova's default period: a calendar month).

Stratus has no such periodic task (Nova's runs only with ``instance_usage_audit``, off by
default): no host has ever run it, so the answer, truthfully, lists every compute host
(disabled ones too: they can have servers) as not run, with no log, no instances audited
and no errors, for the period the request names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratus.common.errors import BadRequest

TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


def parse_before(value: str) -> datetime:
    """The ``before_timestamp`` of ``GET /os-instance_usage_audit_log/{before}``: Nova's
    ``YYYY-MM-DD hh:mm:ss[.ffffff]`` (ISO 8601's ``T`` form is taken too); 400 else."""
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value.replace("T", " ", 1), fmt)
        except ValueError:
            continue
    raise BadRequest(f"Invalid timestamp for date {value!r}: 'YYYY-MM-DD hh:mm:ss' "
                     "(optionally with '.ffffff') is expected.")


def last_completed_month(before: datetime) -> tuple[datetime, datetime]:
    """The calendar month that ended last at or before ``before``: (its first instant,
    the first instant of the month after it)."""
    end = datetime(before.year, before.month, 1)
    start = datetime(end.year - 1, 12, 1) if end.month == 1 else \
        datetime(end.year, end.month - 1, 1)
    return start, end


def audit_log(hosts: list[str], before: datetime) -> dict[str, Any]:
    """The audit log document for the period completed by ``before``, over the compute
    hosts ``hosts``: none has run the audit (Stratus has no audit task)."""
    start, end = last_completed_month(before)
    not_run = sorted(set(hosts))
    return {
        "period_beginning": str(start), "period_ending": str(end),
        "num_hosts": len(not_run), "num_hosts_done": 0, "num_hosts_running": 0,
        "num_hosts_not_run": len(not_run), "hosts_not_run": not_run,
        "total_instances": 0, "total_errors": 0,
        "overall_status": f"0 of {len(not_run)} hosts done. 0 errors.", "log": {},
    }
