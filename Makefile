# spin-work-queue — every command a developer or CI needs.
#
#   make up      build the components and run the app with `spin up`
#   make test    formatting, lints, and every test suite
#   make bench   cost and throughput figures (see README)

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip2

.PHONY: all test lint fmt bench

all: test

## Formatting and lints (warnings are errors).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Format the code.
fmt:
	$(CARGO) fmt --all

## Every test: unit, conformance, crash, concurrency, model-based, cost.
test: lint
	$(CARGO) test --workspace

## Figures: write commits and reads per task, tasks/s on SQLite.
bench:
	$(CARGO) bench --bench queue
