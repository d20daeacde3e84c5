#!/usr/bin/env bash
# The `make demo` walk-through: builds a small shop database with a real history (orders
# whose status changes over time, a customer who is soft-deleted) through the `driftdb`
# command, then reads it back now, AS OF a time, AS OF a seq, as the drift of one key, with an
# indexed query and its plan, compacts the orders table (and reads the past again: the same
# answers), takes a full and an incremental snapshot, exports through them, and runs stats
# and verify (which checks the snapshot files too).
#
# Usage: scripts/demo.sh [path/to/driftdb]   (default: target/release/driftdb)
set -euo pipefail

BIN=${1:-target/release/driftdb}
if [[ ! -x $BIN ]]; then
    echo "demo: $BIN is not built; run \`make demo\` (or cargo build --release -p driftdb-cli)" >&2
    exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/driftdb-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DB=$WORK/shop

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
show() { printf '$ driftdb %s\n' "$*"; }
# Run a DriftQL script, showing it first; results print as tables.
sql() {
    printf '%s\n' "$1" | sed 's/^/  | /'
    "$BIN" sql -d "$DB" --format table -e "$1"
}

say "A new database"
show init "$DB"
"$BIN" init "$DB" --format table

say "Schema: customers and orders, orders indexed by status and by customer"
sql 'CREATE TABLE customers (pk=id);
CREATE TABLE orders (pk=id, INDEX(status), INDEX(customer_id));'

say "Day 1: three customers place orders (all pending)"
sql 'INSERT INTO customers [
  {"id": "c1", "name": "Ada",    "city": "London"},
  {"id": "c2", "name": "Grace",  "city": "Arlington"},
  {"id": "c3", "name": "Edsger", "city": "Nuenen"}];
INSERT INTO orders [
  {"id": 1, "customer_id": "c1", "status": "pending", "total": 120},
  {"id": 2, "customer_id": "c2", "status": "pending", "total": 80},
  {"id": 3, "customer_id": "c1", "status": "pending", "total": 35},
  {"id": 4, "customer_id": "c3", "status": "pending", "total": 260}];'

sleep 1.1
DAY1=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
echo "(the time is now $DAY1; we will read the database as it was then)"
sleep 1.1

say "Day 2: payments arrive in one transaction; Grace leaves (soft delete)"
sql 'BEGIN;
PATCH orders KEY 1 SET {"status": "paid", "paid_with": "card"};
PATCH orders KEY 2 SET {"status": "paid", "paid_with": "invoice"};
PATCH orders KEY 4 SET {"status": "paid", "paid_with": "card"};
COMMIT;
SOFT DELETE FROM customers KEY "c2";'

say "Day 3: shipping; order 3 is cancelled; a new order"
sql 'PATCH orders KEY 1 SET {"status": "shipped", "carrier": "DHL"};
PATCH orders KEY 3 SET {"status": "cancelled"};
INSERT INTO orders {"id": 5, "customer_id": "c3", "status": "pending", "total": 15};
PATCH orders KEY 1 SET {"status": "delivered", "carrier": null};'

say "The state now"
sql 'SELECT id, customer_id, status, total FROM orders ORDER BY id;
SELECT * FROM customers;'

say "AS OF a time: the orders at the end of day 1 ($DAY1)"
sql "SELECT id, status, total FROM orders AS OF \"$DAY1\" ORDER BY id;"

say "AS OF a seq: right after the payments transaction (seq 5), Grace was still a customer"
sql 'SELECT id, status FROM orders WHERE status = "paid" ORDER BY id AS OF @seq:5;
SELECT id, name FROM customers AS OF @seq:5;'

say "The drift of order 1: every event, with the document after it"
show drift -d "$DB" --table orders --key 1
"$BIN" drift -d "$DB" --table orders --key 1 --format table

say "An indexed query and its plan"
sql 'EXPLAIN SELECT id, total FROM orders WHERE status = "paid";
SELECT id, total FROM orders WHERE status = "paid";
SELECT status, COUNT(*) AS orders, SUM(total) AS revenue FROM orders GROUP BY status ORDER BY status;'

say "Compaction: the orders segment rewritten zstd-compressed, every event kept"
show compact -d "$DB" --table orders
"$BIN" compact -d "$DB" --table orders --format table
echo "(tables/orders/segments now holds: $(cd "$DB/tables/orders/segments" && echo *))"
echo "(the past reads the same: the orders at the end of day 1 again)"
sql "SELECT id, status, total FROM orders AS OF \"$DAY1\" ORDER BY id;"

say "Snapshots: a full one now, then an incremental one after more history"
show snapshot -d "$DB" --table orders
"$BIN" snapshot -d "$DB" --table orders --format table
sql 'PATCH orders KEY 5 SET {"status": "paid", "paid_with": "card"};
PATCH orders KEY 4 SET {"status": "shipped", "carrier": "UPS"};'
show snapshot -d "$DB" --table orders
"$BIN" snapshot -d "$DB" --table orders --format table
echo "(tables/orders/snapshots now holds: $(cd "$DB/tables/orders/snapshots" && echo *))"
echo "(and orders gets one automatically every 100 events from now on:)"
sql 'ALTER TABLE orders SET SNAPSHOT EVERY 100;'

say "Export at a point of history (streamed from the nearest snapshot and the events after it)"
show export -d "$DB" --table orders --as-of @seq:4 --format csv
"$BIN" export -d "$DB" --table orders --as-of @seq:4 --format csv
show export -d "$DB" --table orders --format ndjson
"$BIN" export -d "$DB" --table orders --format ndjson

say "Statistics and a full check of every frame on disk"
show stats -d "$DB"
"$BIN" stats -d "$DB" --format table
show verify -d "$DB"
"$BIN" verify -d "$DB" --format table

say "Done: the database was at $DB (removed on exit)"
