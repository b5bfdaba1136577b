"""Restart downtime of every API service while clients and agents are busy (issue 19).

Starts identity, image, network, compute and metadata as real processes (SQLite, one
temporary directory under /tmp, prefix ``trs-bench-``), a client per service sending
one request after another (10 ms apart, keep-alive), and a network and a compute agent
long-polling their APIs (30 s waits). Then restarts each service in turn as a process
manager does (SIGTERM to the pid, wait for the exit, start it again), and reloads it
(SIGHUP to the same pid: ``supervisorctl signal HUP``, ``systemctl reload``; the
hand-over parent starts a new worker on its socket and drains the old one once the new
one is ready, :mod:`stratus.common.handover`), and prints, per service and per
restart or reload: the stop time (SIGTERM to exit; for a reload, SIGHUP to the old
worker's exit), the start time (exec to the first answer), the downtime its client saw
(the longest time without a successful answer; a refused or failed request does not
end it), and the requests that failed, by kind. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/restart_downtime.py [--rounds 3] [--socket]

``--socket``: the restarted process is handed a listening socket that stays open
across the restart (systemd socket activation, ``LISTEN_FDS``), so the requests sent
meanwhile wait in its backlog instead of being refused.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from restartlab import (
    PROBES,
    Probe,
    compute_agent,
    downtime,
    failures,
    full_stack,
    listening_socket,
    network_agent,
    reload,
    restart,
    start_on_socket,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="restarts per service")
    parser.add_argument("--services", default=",".join(PROBES),
                        help="comma-separated, from " + ",".join(PROBES))
    parser.add_argument("--socket", action="store_true",
                        help="hand each new process a listening socket that outlives the "
                             "processes (systemd socket activation) instead of letting "
                             "it bind its port")
    args = parser.parse_args()
    names = args.services.split(",")
    root = Path(tempfile.mkdtemp(prefix="trs-bench-"))
    rows = []
    try:
        with full_stack(root) as stack:
            servers = stack.services()
            probes = {name: Probe(servers[name].url, path, stack.token if auth else None)
                      for name, (path, auth) in PROBES.items()}
            agents = [network_agent(stack, "trs-bench-host"),
                      compute_agent(stack, "trs-bench-host")]
            for t in [*probes.values(), *agents]:
                t.start()
            time.sleep(1.0)
            held: dict[str, socket.socket] = {}
            for name in names:
                if args.socket:  # the first restart binds the socket kept from then on
                    servers[name].proc.send_signal(signal.SIGTERM)
                    servers[name].proc.wait(60)
                    held[name] = listening_socket(servers[name].port)
                    start_on_socket(servers[name], held[name])
                    time.sleep(1.0)
                for _ in range(args.rounds):
                    r = restart(servers[name], held.get(name))
                    time.sleep(2.5)  # clients and agents go on against the new process
                    own = [o for o in probes[name].outcomes if o.started >= r.started_at - 1]
                    failed = Counter(o.detail.split(":")[0] if o.kind == "connection"
                                     else o.kind for o in failures(own)
                                     if o.started <= r.ended_at + 2)
                    rows.append((name, "restart", r.stop, r.start, downtime(own, r), failed))
                for _ in range(args.rounds):
                    h = reload(servers[name])
                    time.sleep(2.5)
                    own = [o for o in probes[name].outcomes if o.started >= h.started_at - 1]
                    failed = Counter(o.detail.split(":")[0] if o.kind == "connection"
                                     else o.kind for o in failures(own)
                                     if o.started <= h.ended_at + 2)
                    rows.append((name, "reload", h.took, float("nan"), downtime(own, h),
                                 failed))
            for t in probes.values():
                t.finish()
            agent_outcomes = {a.name: a.finish() for a in agents}
            for sock in held.values():
                sock.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    how = "socket handed over (systemd socket activation)" if args.socket else \
        "each process binds its port (supervisord; systemd without a .socket unit)"
    print(f"restart: SIGTERM, wait for the exit, start again; {how}")
    print("reload: SIGHUP to the same pid; a new worker on the same socket, the old one "
          "drains once it is ready (stop: SIGHUP to the old worker's exit)")
    print(f"{'service':10} {'how':8} {'stop s':>7} {'start s':>8} {'downtime s':>11}  "
          "failed requests")
    for name, kind, stop, start, down, failed in rows:
        print(f"{name:10} {kind:8} {stop:7.2f} {start:8.2f} {down:11.2f}  "
              f"{dict(failed) or '-'}")
    print()
    for name in names:
        line = []
        for kind in ("restart", "reload"):
            downs = [r[4] for r in rows if r[0] == name and r[1] == kind]
            line.append(f"{kind} median downtime {statistics.median(downs):.2f} s "
                        f"(max {max(downs):.2f} s over {len(downs)})")
        print(f"{name}: " + "; ".join(line))
    for agent, outcomes in agent_outcomes.items():
        errors = Counter(o.detail[:80] for o in outcomes if o.kind != "ok")
        print(f"{agent}: {sum(o.kind == 'ok' for o in outcomes)} long-polls answered, "
              f"{sum(errors.values())} failed {dict(errors) or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
