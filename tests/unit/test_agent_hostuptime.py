"""The compute agent's uptime line (agent/compute/hostuptime.py): ``uptime``'s format from
/proc/uptime and /proc/loadavg, and None when they cannot be read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stratus.agent.compute.hostuptime import read_uptime, uptime_line

pytestmark = pytest.mark.unit
AT = time.struct_time((2026, 12, 7, 6, 40, 1, 0, 341, 0))


@pytest.mark.parametrize(("seconds", "users", "expected"), [
    (36 * 60 + 59, 0, " 06:40:01 up 36 min,  0 users,  load average: 0.00, 0.01, 0.05"),
    (3 * 3600 + 5 * 60, 1, " 06:40:01 up  3:05,  1 user,  load average: 0.00, 0.01, 0.05"),
    (86400 + 12 * 3600, 2,
     " 06:40:01 up 1 day, 12:00,  2 users,  load average: 0.00, 0.01, 0.05"),
    (3 * 86400 + 7 * 60, 0,
     " 06:40:01 up 3 days, 7 min,  0 users,  load average: 0.00, 0.01, 0.05"),
])
def test_the_line_is_written_as_uptime_writes_it(seconds: float, users: int,
                                                     expected: str) -> None:
    assert uptime_line(AT, seconds, (0.0, 0.011, 0.049), users) == expected


def test_read_from_proc(tmp_path: Path) -> None:
    (tmp_path / "uptime").write_text("2220.54 4000.10\n")
    (tmp_path / "loadavg").write_text("0.52 0.58 0.59 1/345 12345\n")
    line = read_uptime(tmp_path)
    assert line is not None
    assert line.endswith(" up 37 min,  0 users,  load average: 0.52, 0.58, 0.59")
    assert line[0] == " " and line[3] == ":" and line[9:13] == " up "


@pytest.mark.parametrize(("uptime", "loadavg"), [
    (None, "0.1 0.2 0.3 1/2 3"), ("2220.54 1\n", None), ("junk\n", "0.1 0.2 0.3 1/2 3"),
    ("2220.54 1\n", "0.1 0.2\n"), ("", "0.1 0.2 0.3 1/2 3")])
def test_unreadable_proc_gives_none(tmp_path: Path, uptime: str | None,
                                        loadavg: str | None) -> None:
    for name, text in (("uptime", uptime), ("loadavg", loadavg)):
        if text is not None:
            (tmp_path / name).write_text(text)
    assert read_uptime(tmp_path) is None


def test_this_hosts_proc_gives_a_line() -> None:
    line = read_uptime()
    assert line is not None and " up " in line and "load average: " in line
