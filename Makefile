# DriftDB developer commands. `make ci` runs exactly what `.ci/run` runs.
CARGO ?= cargo
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
export RUSTDOCFLAGS := -D warnings

.PHONY: build test demo bench bench-time-travel fmt fmt-check clippy doc ci soak fuzz clean

build:
	$(CARGO) build --workspace --release

## The tests: formatting, lints, every test suite (unit, doc, integration, crash), and docs.
test: fmt-check clippy
	@mkdir -p target
	$(CARGO) test --workspace --all-targets 2>&1 | tee target/test-output.txt
	$(CARGO) test --workspace --doc 2>&1 | tee -a target/test-output.txt
	@scripts/check-test-counts.sh target/test-output.txt
	$(CARGO) doc --workspace --no-deps

## The main job: a runnable example that embeds the engine and travels through history.
demo:
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

## Fuzz the frame decoder and file checkers (needs `cargo install cargo-fuzz@0.13.2`).
## New corpus entries land in fuzz/corpus/frame_decode, which CI replays as a test.
fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decode -- -max_total_time=$${FUZZ_SECONDS:-300} -max_len=4096

clean:
	$(CARGO) clean
