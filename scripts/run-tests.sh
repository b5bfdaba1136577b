#!/usr/bin/env bash
# The test run of `make test` (after lint): the whole of tests/ in two phases, so that
# molecule's scenarios fit the suite's time budget on a 2-core machine.
#
#   1. the end-to-end tests (tests/e2e) but molecule's: the session cloud and the deploys
#      beside it, Tempest, the dashboard in Chromium. They deploy onto this host, one
#      site.yml/teardown.yml run at a time (the e2e flock).
#   2. molecule's two scenarios (tests/e2e/test_molecule.py, STRATUS_MOLECULE=1: podman
#      containers running systemd) beside every other test (unit, integration, the guest
#      images), which deploy nothing onto the host: the containers are their own hosts, the
#      other tests start their services in temporary directories on ports of their own. The
#      molecule run's output is kept in a file and printed after phase 2's own.
#
# Every phase runs even when an earlier one failed; the exit status is non-zero when any
# did. Arguments go to every pytest run (make test passes PYTEST_ARGS). VENV names the
# virtualenv (default .venv).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

status=0
echo "== tests/e2e (but molecule) =="
"$BIN/pytest" tests/e2e --ignore=tests/e2e/test_molecule.py "$@" || status=1

log="$(mktemp /tmp/stratus-test-molecule-XXXXXX)"
echo "== molecule (tests/e2e/test_molecule.py, output in $log) beside the other tests =="
STRATUS_MOLECULE=1 "$BIN/pytest" tests/e2e/test_molecule.py "$@" >"$log" 2>&1 &
molecule=$!
# An interrupted run stops molecule's pytest too (its test destroys what it made).
trap 'kill -INT "$molecule" 2>/dev/null; wait "$molecule"; rm -f "$log"; exit 130' INT TERM

"$BIN/pytest" tests --ignore=tests/e2e "$@" || status=1

wait "$molecule" || status=1
trap - INT TERM
echo "== molecule's run =="
cat "$log"
rm -f "$log"
exit "$status"
