#!/usr/bin/env bash
# Fail when the test run failed or when any suite that should have tests ran none.
# Usage: check-test-counts.sh OUTPUT_FILE
set -euo pipefail
out=$1
if grep -q '^test result: FAILED' "$out"; then
  echo "some tests failed" >&2
  exit 1
fi
total=$(awk '/^test result: ok\./ { s += $4 } END { print s + 0 }' "$out")
if [ "$total" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
# Every integration test file must run at least one test.
empty=""
current=""
while IFS= read -r line; do
  case "$line" in
    *"Running tests/"*) current=$(echo "$line" | sed -E 's/.*Running (tests\/[^ ]+).*/\1/') ;;
    "test result: ok. 0 passed"*) [ -n "$current" ] && empty="$empty $current" ;;
    "test result:"*) current="" ;;
  esac
done < "$out"
if [ -n "$empty" ]; then
  echo "integration test files that ran no test:$empty" >&2
  exit 1
fi
echo "all test suites: $total passed, 0 failed"
