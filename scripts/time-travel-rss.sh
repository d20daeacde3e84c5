#!/usr/bin/env bash
# Resident memory of DriftDB on the time-travel history, measured with `/usr/bin/time -v`:
# a fresh process opens the database (target: under 200 MB), and a second one opens it and
# scans it AS OF its middle seq (target: under 100 MB more).
# Usage: scripts/time-travel-rss.sh [DIR]   (EVENTS=1000000 by default; DIR defaults to
# $DRIFTDB_BENCH_DIR or target/tmp, where `make bench-time-travel` builds its histories too).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${EVENTS:-1000000}
root=${1:-${DRIFTDB_BENCH_DIR:-target/tmp}}
timer=/usr/bin/time
if [ ! -x "$timer" ]; then
  echo "$timer is missing: install GNU time (apt-get install time)" >&2
  exit 1
fi
cargo build --release -q -p driftdb-benches --example time_travel_report
bin=target/release/examples/time_travel_report
"$bin" build --events "$events" "$root"
history="$root/time-travel-$events"
for mode in open scan; do
  args=(memory)
  [ "$mode" = scan ] && args+=(--scan)
  log=$(mktemp)
  "$timer" -v "$bin" "${args[@]}" "$history" 2>"$log"
  max_kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$log")
  echo "$mode: /usr/bin/time -v maximum resident set size ${max_kb} kB ($((max_kb / 1024)) MiB), wall ${wall}"
  rm -f "$log"
done
