#!/bin/bash
set -e
# Time a streamed export of a plaintext and an encrypted database of 200,000 documents with a
# snapshot (docs/PERFORMANCE.md, "Encryption at rest"). Usage: scripts/encrypted-export.sh [DIR]
cd "$(dirname "$0")/.."
cargo build --release -q -p driftdb-cli
B=target/release/driftdb
W=${1:-/tmp/driftdb-encrypted-export}; rm -rf "$W/plain" "$W/enc"; mkdir -p "$W"
python3 -c "
import json
with open('$W/docs.ndjson','w') as f:
    for i in range(200000):
        f.write(json.dumps({'id': i, 'name': 'customer-%06d' % i, 'amount': i % 977, 'tags': ['a','b']})+'\n')
"
export DRIFTDB_KEY=$(python3 -c "print('ab'*32)")
for mode in plain enc; do
  D=$W/$mode
  if [ $mode = enc ]; then $B init --encrypt $D >/dev/null; else env -u DRIFTDB_KEY $B init $D >/dev/null; fi
  run() { if [ $mode = enc ]; then "$@"; else env -u DRIFTDB_KEY "$@"; fi; }
  run $B sql -d $D -e 'CREATE TABLE docs (pk=id)' >/dev/null
  run $B import -d $D --table docs $W/docs.ndjson >/dev/null
  run $B snapshot -d $D --table docs --format json
  run $B sql -d $D -e 'PATCH docs KEY 5 SET {"amount": 1}' >/dev/null
  for i in 1 2 3; do
    /usr/bin/time -f "$mode export --as-of now: %e s, %M KB" bash -c "$(declare -f run); mode=$mode; run $B export -d $D --table docs --format ndjson -o $W/out-$mode.ndjson" 
  done
done
cmp <(sort $W/out-plain.ndjson) <(sort $W/out-enc.ndjson) && echo same-output
du -sh $W/plain $W/enc
