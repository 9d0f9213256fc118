# tgrun: the two commands a user needs are `make run` and `make test`.

CARGO      ?= cargo
WASM       := wasm32-wasip2
GUEST_OUT  := target/$(WASM)/guest
# Rust jobs are the crates in jobs-wasm/; Python jobs the folders in jobs-wasm/python/.
# (noop_core, a bench fixture without std, is a workspace of its own: see `bench`.)
JOBS       := $(filter-out noop_core,$(notdir $(patsubst %/Cargo.toml,%,$(wildcard jobs-wasm/*/Cargo.toml))))
PY_JOBS    := $(notdir $(wildcard jobs-wasm/python/*))
PY_VENV    := target/py-venv
COMPONENTIZE_PY := $(PY_VENV)/bin/componentize-py
# The real aiohttp, pinned: tglib's pattern in `make bench`, and what the guest's aiohttp is
# checked against in `make py-test`.
BENCH_VENV := target/bench-venv
WIT        := $(wildcard wit/*.wit)
EXAMPLES   := add_x save_topology echo
CONFIG_DIR ?= config

.PHONY: all toolchain clippy-driver tgrun-bin test-deps jobs py-jobs py-test build release image-context run test lint fmt bench fuzz

all: build jobs

# The wasm target is not installed automatically on this machine: install it here.
toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM) || rustup target add $(WASM)

# What the end-to-end tests talk to: a real Prometheus, and a real browser for the
# dashboard (Chromium driven by chromedriver), all Debian's packages. MariaDB and NATS run
# on the machine already (127.0.0.1:3306, 127.0.0.1:4222).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# systemd-analyze checks deploy/'s unit; promtool (prometheus') the /metrics exposition.
test-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && \
		command -v chromedriver >/dev/null && command -v systemd-analyze >/dev/null || { \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
		--no-install-recommends prometheus chromium chromium-driver systemd; }

# Every job in jobs-wasm/ as a component; the examples also go to config/modules/.
jobs: toolchain py-jobs
	$(CARGO) build --profile guest --target $(WASM) $(addprefix -p ,$(JOBS))
	@mkdir -p $(CONFIG_DIR)/modules
	@for j in $(EXAMPLES); do cp $(GUEST_OUT)/$$j.wasm $(CONFIG_DIR)/modules/$$j.wasm; done
	@echo "jobs built in $(GUEST_OUT); examples copied to $(CONFIG_DIR)/modules"

# Python jobs: `tgrun build`, as users build theirs anywhere (README: Moving a tglib
# service). tgrun carries the guest SDK and the WIT and keeps componentize-py (pinned,
# hash-checked), SQLAlchemy and what it builds in its cache, target/tgrun-cache: a folder
# none of whose files changed (nor the SDK, nor the WIT) comes from there at once, so each
# is asked every time, two at a time. tgrun itself is built as the tests build it (the
# same features, with clippy's lints), so `make test` reuses it.
TGRUN      := target/debug/tgrun
TGRUN_CACHE := target/tgrun-cache

tgrun-bin: clippy-driver
	$(LINTED) $(CARGO) test --no-run --quiet

py-jobs: tgrun-bin
	@mkdir -p $(GUEST_OUT)
	@printf '%s\n' $(PY_JOBS) | xargs -P 2 -I{} \
		$(TGRUN) build jobs-wasm/python/{} -o $(GUEST_OUT)/{}.wasm --cache-dir $(TGRUN_CACHE)

# For the SDK's unit tests on the machine's Python: componentize-py (its bindings) and
# SQLAlchemy (the pinned source distribution, hash-checked, its pure-Python package).
$(COMPONENTIZE_PY): guest-sdk/python/requirements-build.txt
	python3 -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r $<
	@touch $@

PY_DEPS := target/py-deps
$(PY_DEPS)/sqlalchemy/__init__.py: guest-sdk/python/requirements-guest.txt | $(COMPONENTIZE_PY)
	rm -rf target/py-dl $(PY_DEPS) && mkdir -p target/py-dl $(PY_DEPS)
	$(PY_VENV)/bin/pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
		--require-hashes -r $< -d target/py-dl
	tar -xzf target/py-dl/SQLAlchemy-1.3.24.tar.gz -C target/py-dl
	cp -r target/py-dl/SQLAlchemy-1.3.24/lib/sqlalchemy $(PY_DEPS)/
	@touch $@

# The Python SDK's own unit tests, on the machine's Python with the generated bindings.
py-test: $(COMPONENTIZE_PY) $(PY_DEPS)/sqlalchemy/__init__.py $(BENCH_VENV)/installed
	@rm -rf target/py-bindings && $(COMPONENTIZE_PY) -d wit -w service bindings target/py-bindings >/dev/null
	AIOHTTP_REFERENCE_PYTHON=$(abspath $(BENCH_VENV))/bin/python PYTHONPATH=target/py-bindings:guest-sdk/python:guest-sdk/python-shims:$(PY_DEPS):jobs-wasm/python $(PY_VENV)/bin/python -m unittest discover -s guest-sdk/python/tests -t guest-sdk/python

build:
	$(CARGO) build -p tgrun

# The release binary, target/release/tgrun (as `cargo install --path runner` builds it).
release:
	$(CARGO) build --release -p tgrun

# What deploy/Containerfile copies, staged in target/image (the build context): the
# release binary and the example configuration with its modules.
image-context: release jobs
	rm -rf target/image && mkdir -p target/image
	cp target/release/tgrun target/image/tgrun
	cp -r $(CONFIG_DIR) target/image/config
	rm -rf target/image/config/.tgrun-cache
	@echo "podman build -f deploy/Containerfile -t tgrun target/image"

# Serve config/: the example pipelines run (the demo pipeline every 5 s) and
# GET http://localhost:8080/status answers. Ctrl-C stops it.
run: jobs
	$(TGRUN) serve --config-dir $(CONFIG_DIR)

# Clippy's lints come with the build: clippy-driver compiles our crates (as `cargo clippy`
# does, with -D warnings) and dependencies are compiled once, for lint and tests alike,
# instead of once more by clippy's own check build. The same targets as
# `cargo clippy --all-targets` (library, binary, unit and integration tests; no benches or
# examples in these crates).
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings

clippy-driver:
	@test -n "$(CLIPPY_DRIVER)" || { echo "clippy is missing: rustup component add clippy"; exit 1; }

# Every test: unit tests, the SDK's, and the integration tests against real components.
# Ends with the ten slowest tests and their times.
test: clippy-driver jobs test-deps py-test
	@$(CARGO) nextest --version >/dev/null 2>&1 || { \
		echo "make test runs the tests with cargo-nextest: cargo install cargo-nextest --locked"; exit 1; }
	@# The SDK's examples compile against its API. Over the default members (the runner has
	@# no doctests) so that features unify as in the test build, which it reuses; with
	@# `-p tgrun-sdk` alone a cold run rebuilt 20 crates (97 s).
	$(LINTED) $(CARGO) test --doc
	@# The SDK can be published: its WIT travels inside it (guest-sdk/wit).
	$(CARGO) package -p tgrun-sdk --allow-dirty --quiet
	@$(LINTED) $(CARGO) nextest run --no-fail-fast; status=$$?; \
		python3 .ci/slowest.py target/nextest/default/junit.xml 10; exit $$status

# Style, clippy (on the test build, which `make test` then reuses; cargo's build timings
# land in target/cargo-timings/), the jobs' clippy, every public item of the SDK documented
# (for the target jobs are built for, reusing the jobs' clippy build: a minute less cold).
lint: toolchain clippy-driver
	$(CARGO) fmt --all --check
	$(LINTED) $(CARGO) test --no-run --timings
	$(CARGO) clippy --profile guest --target $(WASM) $(addprefix -p ,$(JOBS)) -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --profile guest --target $(WASM) -p tgrun-sdk --no-deps

fmt:
	$(CARGO) fmt --all

# Figures, not pass/fail: per-run cost and throughput (release build).
# The service figures run the release `tgrun` binary in a process of its own; the
# bumper's needs a real Prometheus.
# tglib's pattern beside ours (figure 6) runs on aiohttp, pinned, in BENCH_VENV.
bench: jobs test-deps $(BENCH_VENV)/installed $(GUEST_OUT)/noop_core.wasm
	$(CARGO) build --release -p tgrun
	$(CARGO) bench -p runner-bench

# The trivial job without std and WASI, built on its own (its features must not unify with
# the SDK's), for the host's own share of a run.
$(GUEST_OUT)/noop_core.wasm: jobs-wasm/noop_core/src/lib.rs jobs-wasm/noop_core/Cargo.toml $(WIT) | toolchain
	cd jobs-wasm/noop_core && CARGO_TARGET_DIR=../../target/noop-core $(CARGO) build --release --target $(WASM)
	@mkdir -p $(GUEST_OUT) && cp target/noop-core/$(WASM)/release/noop_core.wasm $@

$(BENCH_VENV)/installed: runner/bench/python/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	@touch $@

# Fuzz the configuration loader, the admin JSON bodies, the host functions' inputs and a
# guest's sequences of host calls (the `fuzz_calls` component in the real sandbox),
# FUZZ_SECONDS each (cargo-fuzz on the stable toolchain, without a sanitizer). Findings
# land in runner/fuzz/artifacts/. The configuration targets tick a scheduler built from
# what they accept, running the `noop` job (hence `jobs`).
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := config admin_body host_inputs host_calls
fuzz: jobs
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd runner && for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && \
		$(CARGO) fuzz run -s none -O $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; \
	done
