#!/usr/bin/python3
"""Run in the host by ../reboot.yml after the reboot: every Stratus unit (each
/etc/systemd/system/stratus-*.service, or <prefix>-stratus-*) is active, none was restarted
by systemd since the boot (NRestarts 0: no unit failed on its way up), and each started only
once the Stratus units it is ordered after (After=) were active. Prints the units in the
order they started (seconds after the first); exits 1 with what is wrong (the play retries
while units are still coming up)."""

import glob
import os
import subprocess
import sys

PROPS = ["Id", "ActiveState", "SubState", "NRestarts", "After",
         "ActiveEnterTimestampMonotonic", "ExecMainStartTimestampMonotonic"]


def show(units):
    out = subprocess.run(["systemctl", "show", "--property=" + ",".join(PROPS), *units],
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[props["Id"]] = props
    return found


def main():
    units = sorted(os.path.basename(p) for p in glob.glob("/etc/systemd/system/*stratus-*.service"))
    if not units:
        print("no Stratus unit in /etc/systemd/system")
        return 1
    state = show(units)
    problems = []
    for name in units:
        unit = state[name]
        if unit["ActiveState"] != "active":
            problems.append(f"{name} is {unit['ActiveState']} ({unit['SubState']})")
        if unit["NRestarts"] not in ("", "0"):
            problems.append(f"{name} was restarted {unit['NRestarts']} times since the boot")
        started = int(unit["ExecMainStartTimestampMonotonic"] or 0)
        for dep in unit["After"].split():
            if dep in state and dep != name:
                ready = int(state[dep]["ActiveEnterTimestampMonotonic"] or 0)
                if not ready or not started or started < ready:
                    problems.append(f"{name} started before {dep} was active")
    first = min(int(state[n]["ExecMainStartTimestampMonotonic"] or 0) for n in units)
    for name in sorted(units, key=lambda n: int(state[n]["ExecMainStartTimestampMonotonic"] or 0)):
        started = int(state[name]["ExecMainStartTimestampMonotonic"] or 0)
        deps = [d for d in state[name]["After"].split() if d in state and d != name]
        print(f"{(started - first) / 1e6:7.2f} s  {name} {state[name]['ActiveState']}"
              + (f" (after {' '.join(deps)})" if deps else ""))
    for problem in problems:
        print("PROBLEM: " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
