# DriftDB developer commands. `make ci` runs exactly what `.ci/run` runs.
CARGO ?= cargo
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
export RUSTDOCFLAGS := -D warnings

.PHONY: build test demo example bench bench-time-travel fmt fmt-check clippy doc ci soak fuzz clean

build:
	$(CARGO) build --workspace --release

## The tests: formatting, lints, every test suite (unit, doc, integration, crash), and docs.
test: fmt-check clippy
	@mkdir -p target
	$(CARGO) test --workspace --all-targets 2>&1 | tee target/test-output.txt
	$(CARGO) test --workspace --doc 2>&1 | tee -a target/test-output.txt
	@scripts/check-test-counts.sh target/test-output.txt
	$(CARGO) doc --workspace --no-deps

## The walk-through: build the `driftdb` binary and run scripts/demo.sh with it (a shop whose
## orders change over time, read now, AS OF a time and a seq, drift, EXPLAIN, snapshot, compact).
demo:
	$(CARGO) build --release -q -p driftdb-cli
	scripts/demo.sh target/release/driftdb

## The embedding example: a program that uses the engine as a library.
example:
	$(CARGO) run --release -q -p driftdb-core --example time_travel

bench:
	$(CARGO) bench -p driftdb-benches

## Time travel beside SQLite (1M-event history, built once under target/tmp), then resident
## memory with /usr/bin/time -v. See docs/PERFORMANCE.md, "Time travel beside SQLite".
bench-time-travel:
	$(CARGO) bench -p driftdb-benches --bench time_travel
	scripts/time-travel-rss.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc:
	$(CARGO) doc --workspace --no-deps

ci: test

## Long crash soak (not in CI): many more kill trials and model cases.
soak:
	DRIFTDB_CRASH_TRIALS=2000 PROPTEST_CASES=1000 $(CARGO) test --release -p driftdb-core --test crash_kill --test model

## Fuzz the frame decoder and file checkers, then the DriftQL parser, FUZZ_SECONDS each
## (needs `cargo install cargo-fuzz@0.13.2`). New corpus entries land in
## fuzz/corpus/{frame_decode,parse}, which CI replays as tests.
fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decode -- -max_total_time=$${FUZZ_SECONDS:-300} -max_len=4096
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time=$${FUZZ_SECONDS:-300} -max_len=4096 -timeout=10 -dict=parse.dict

clean:
	$(CARGO) clean
