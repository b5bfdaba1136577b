#!/usr/bin/env bash
# The test run of `make test` (after lint): the whole of tests/ in two phases, so that
# molecule's scenarios fit the suite's time budget on a 2-core machine.
#
#   1. the end-to-end tests (tests/e2e) but molecule's: the session cloud and the deploys
#      beside it, Tempest, the dashboard in Chromium. They deploy onto this host, one
#      site.yml/teardown.yml run at a time (the e2e flock).
#   2. two streams side by side: (a) molecule's two scenarios (tests/e2e/test_molecule.py,
#      STRATUS_MOLECULE=1: podman containers running systemd), then the unit tests
#      (tests/unit); (b) every other test (integration, the guest images). None of them
#      deploys onto the host: the containers are their own hosts, the other tests start
#      their services in temporary directories on ports of their own. Stream (b), the
#      longer, prints as it goes; stream (a)'s output is kept in a file and printed after.
#
# Every phase runs even when an earlier one failed; the exit status is non-zero when any
# did. Arguments go to every pytest run (make test passes PYTEST_ARGS); a run whose
# arguments select no test of a phase (`-k`, `-m`: pytest's exit status 5) is not a failure
# of that phase. VENV names the virtualenv (default .venv).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

run_pytest() {
  "$BIN/pytest" "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "(no test of this phase selected)"
    return 0
  fi
  return "$rc"
}

status=0
echo "== tests/e2e (but molecule) =="
run_pytest tests/e2e --ignore=tests/e2e/test_molecule.py "$@" || status=1

log="$(mktemp /tmp/stratus-test-stream-XXXXXX)"
echo "== molecule, then tests/unit (output in $log), beside the other tests =="
(
  rc=0
  STRATUS_MOLECULE=1 run_pytest tests/e2e/test_molecule.py "$@" || rc=1
  run_pytest tests/unit "$@" || rc=1
  exit "$rc"
) >"$log" 2>&1 &
stream=$!
# An interrupted run interrupts the other stream's pytest too (by its parent's pid); an
# interrupted molecule test still waits for its molecule run, destroy included.
trap 'pkill -INT -P "$stream"; wait "$stream"; rm -f "$log"; exit 130' INT TERM

run_pytest tests --ignore=tests/e2e --ignore=tests/unit "$@" || status=1

wait "$stream" || status=1
trap - INT TERM
echo "== molecule, then tests/unit =="
cat "$log"
rm -f "$log"
exit "$status"
