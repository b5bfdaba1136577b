"""The host's uptime line, as ``uptime`` prints it, for the compute agent's heartbeat
(os-hypervisors shows it: ``GET /os-hypervisors/{id}/uptime`` until 2.87, the ``uptime``
field from 2.88).

It is made from /proc/uptime (seconds since boot) and /proc/loadavg (the 1, 5 and 15
minute load averages) with the host's local time, e.g.
`` 06:40:01 up 36 min,  0 users,  load average: 0.00, 0.01, 0.05``. Logged-in users
are not counted (that needs utmp, which a compute host may not keep): the count is 0.
"""

from __future__ import annotations

import time
from pathlib import Path


def uptime_line(clock: time.struct_time, up_seconds: float, loads: tuple[float, float, float],
                users: int = 0) -> str:
    """The line for the local time ``clock``, ``up_seconds`` since boot and the three load
    averages (days, then ``H:MM`` or ``N min``, as ``uptime`` writes them)."""
    total_min = int(up_seconds) // 60
    days, hours, minutes = total_min // 1440, total_min // 60 % 24, total_min % 60
    up = f"{days} day{'' if days == 1 else 's'}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}, " if hours else f"{minutes} min, "
    return (f" {clock.tm_hour:02d}:{clock.tm_min:02d}:{clock.tm_sec:02d} up {up}"
            f"{users:2d} user{'' if users == 1 else 's'},  "
            f"load average: {loads[0]:.2f}, {loads[1]:.2f}, {loads[2]:.2f}")


def read_uptime(proc: Path = Path("/proc")) -> str | None:
    """The host's line now; None when /proc cannot be read or parsed (the heartbeat then
    sends no uptime and the API keeps answering 501 for it)."""
    try:
        up = float((proc / "uptime").read_text().split()[0])
        loads = tuple(float(x) for x in (proc / "loadavg").read_text().split()[:3])
    except (OSError, ValueError, IndexError):
        return None
    if len(loads) != 3 or up < 0:
        return None
    return uptime_line(time.localtime(), up, (loads[0], loads[1], loads[2]))
