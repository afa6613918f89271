# spin-work-queue — every command a developer or CI needs.
#
#   make up      build the components and run the app with `spin up`
#   make test    formatting, lints, and every test suite
#   make bench   cost and throughput figures (see README)
#   make sim     more seeds of the simulation (SEEDS=n, default 200)

CARGO       ?= cargo
SPIN        ?= spin
WASM_TARGET := wasm32-wasip2
COMPONENTS  := wq-queue wq-worker wq-echo wq-fetch
HOSTED      := wq-queue wq-worker
HOSTED_DIR  := target/hosted

.PHONY: all build build-hosted up up-hosted up-redis test lint fmt bench sim wasm-target

SEEDS ?= 200

all: test

## The wasm32-wasip2 target, installed with rustup when missing.
wasm-target:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) \
	  || rustup target add $(WASM_TARGET)

## Build every component (release, wasm32-wasip2).
build: wasm-target
	$(CARGO) build --target $(WASM_TARGET) --release $(addprefix -p ,$(COMPONENTS))

## The hosted builds (Fermyon Cloud, Akamai Functions): the queue and the
## worker on the store-only engine, in target/hosted (deploy/*/spin.toml).
build-hosted: wasm-target
	$(CARGO) build --target $(WASM_TARGET) --release --target-dir $(HOSTED_DIR) --features hosted $(addprefix -p ,$(HOSTED))

## Build, then serve the app with Spin (default SQLite key-value store).
up: build
	@command -v $(SPIN) >/dev/null || { \
	  echo "spin is not installed. Install it with:"; \
	  echo "  curl -fsSL https://spinframework.dev/downloads/install.sh | bash"; \
	  echo "then move ./spin onto your PATH and run 'make up' again."; \
	  exit 1; }
	$(SPIN) up

## The same with Redis as the key-value store (runtime-config/redis.toml);
## Spin's Redis store cannot serve `get-many`, so keys are read one by one.
up-redis: build
	@command -v $(SPIN) >/dev/null || { echo "spin is not installed (see 'make up')"; exit 1; }
	SPIN_VARIABLE_KV_GET_MANY=single $(SPIN) up --runtime-config-file runtime-config/redis.toml

## The hosted build served locally, as on Fermyon Cloud (PLATFORM=
## akamai-functions for the other manifest); needs SPIN_VARIABLE_API_TOKEN.
PLATFORM ?= fermyon-cloud
up-hosted: build-hosted
	$(SPIN) up -f deploy/$(PLATFORM)/spin.toml

## Formatting and lints (warnings are errors), native and of the
## components' wasm32 code.
lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) $(addprefix -p ,$(COMPONENTS)) -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) --target-dir $(HOSTED_DIR) --features hosted $(addprefix -p ,$(HOSTED)) -- -D warnings

## Format the code.
fmt:
	$(CARGO) fmt --all

## Every test: unit, conformance, simulation, crash, concurrency,
## model-based, cost, API contract, component imports, end to end on
## wq-test-host, the dag_executor example, and on a real `spin up` (the
## end-to-end suites and the example again) when Spin is installed
## (WQ_REQUIRE_SPIN=1 makes a missing Spin a failure).
test: lint build build-hosted
	$(CARGO) test --workspace
	$(CARGO) run --quiet --example dag_executor
	CARGO=$(CARGO) WQ_SPIN=$(SPIN) tests/spin-e2e.sh

## The deterministic simulation on SEEDS seeds per store (optimised
## build); a failing seed prints its trace and how to replay it.
sim:
	SIM_SEEDS=$(SEEDS) $(CARGO) test --release --test simulation -- --nocapture

## Figures: write commits and reads per task, tasks/s on SQLite, storage
## after retention, the simulator's seeds, tasks/s end to end through
## the components, and what a pipeline node costs.
bench: build build-hosted
	$(CARGO) bench --bench queue
	$(CARGO) bench --bench e2e
	$(CARGO) bench --bench dispatch
	$(CARGO) bench --bench hosted
	$(CARGO) bench --bench pipeline
