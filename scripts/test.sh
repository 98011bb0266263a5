#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): start the local stack, run every test
# (unit, integration, e2e), keep the results under test-output/, exit with pytest's status.
# "No tests collected" counts as a failure. A stack this script started is stopped again at
# the end; one that was already running is left running.
set -uo pipefail

cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=test-output
mkdir -p "$OUT"

if "$BIN/streamscout" stack status >/dev/null 2>&1; then
  started_stack=""
else
  started_stack=1
fi

echo "test: starting the local stack"
if ! "$BIN/streamscout" stack up 2>&1 | tee "$OUT/stack-up.log"; then
  echo "test: the local stack did not come up (see $OUT/stack-up.log and var/log/)" >&2
  exit 1
fi

# Tests marked quarantine (`make test-quarantine`; none at present) are left out until they pass reliably.
"$BIN/pytest" --junitxml="$OUT/junit.xml" -o junit_family=xunit2 -m "not quarantine" "$@" 2>&1 | tee "$OUT/pytest.log"
status=${PIPESTATUS[0]}

"$BIN/streamscout" stack status --json > "$OUT/stack-status.json" 2>&1 || true
if [[ -n $started_stack ]]; then
  echo "test: stopping the stack this run started"
  "$BIN/streamscout" stack down >/dev/null 2>&1 || true
fi

if [[ $status -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
