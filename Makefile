# Everything a fresh machine needs is bootstrapped from here: uv, the project, test tools.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# CPU torch comes from a local wheelhouse (never PyPI's CUDA build).
WHEELHOUSE ?= $(or $(BUILDER_WHEELHOUSE),$(firstword $(PIP_FIND_LINKS)))
export UV_PYTHON_DOWNLOADS := never

.PHONY: help lint dev dev-engine chromium shellcheck compare-report seed-report run test test-examples test-fast test-slow lock-check bench-install bench-engine bench-engine-bounds bench-frozen bench-resample bench-package bench-compare-power check-repro clean

help:
	@echo "make run         build the host's minimal profile end to end"
	@echo "make test        all tests (fast first, then slow)"
	@echo "make lint        ruff (check, format) and mypy --strict over builder/ and runtime_entry/ for linux, win32, darwin"
	@echo "make bench-install  install-stage benchmark -> docs/PERFORMANCE.md"
	@echo "make bench-engine  the engine vs msst and audio-separator, interleaved -> docs/PERFORMANCE.md"
	@echo "make bench-compare-power  builder compare's default verdict on a planted one-thread slowdown, N=10 runs -> docs/PERFORMANCE.md"
	@echo "make bench-engine-bounds  where --precision highest's time goes, and its ceilings -> docs/PERFORMANCE.md"
	@echo "make bench-package  the package stage vs the old one, interleaved -> docs/PERFORMANCE.md"
	@echo "make seed-report the by-hand OLD/NEW comparison, measured (compare + doctor, ~15 min) -> docs/seed-report.md"
	@echo "make check-repro build twice from clean and diff every file"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

# builder itself and its test tools (what a release runner needs)
$(VENV)/.installed: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[test]"
	touch $@

# + what the engine's tests import: CPU torch from the wheelhouse, never PyPI's CUDA build;
# msst, the engine's reference, without its dependencies (its torch<2.12 pin does not apply)
$(VENV)/.installed-engine: $(VENV)/.installed tests/requirements-engine.txt
	$(BIN)/uv pip install --python $(BIN)/python --quiet $(if $(WHEELHOUSE),--find-links $(WHEELHOUSE)) -r tests/requirements-engine.txt
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps msst==0.1.0
	touch $@

dev: $(VENV)/.installed

# Lint tools, pinned in pyproject's [lint] extra; mypy also reads torch's and numpy's types.
$(VENV)/.installed-lint: $(VENV)/.installed-engine pyproject.toml
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[test,lint]"
	touch $@

# mypy once per target system: typeshed knows which os, signal and resource APIs each one has,
# so a call that Windows or macOS lacks fails here, on Linux.
MYPY_PLATFORMS := linux win32 darwin

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@for p in $(MYPY_PLATFORMS); do echo "mypy --platform $$p"; \
	  $(BIN)/mypy --platform $$p --cache-dir .mypy_cache/$$p || exit 1; done

# Headless Chromium for the compare report's screenshot test (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# actionlint runs ShellCheck over the release workflow's scripts when it is on PATH (Debian's package).
shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null)

dev-engine: $(VENV)/.installed-engine

run: dev
	$(BIN)/builder build

# The examples/ projects take several torch freezes each: their own target, outside CI's budget.
test: dev-engine chromium shellcheck
	@echo "make test: tests marked 'example' (examples/msst, ~40 min) run with 'make test-examples'"
	$(BIN)/python -m pytest -m "not example"

test-examples: dev-engine
	$(BIN)/python -m pytest -m example

test-fast: dev-engine shellcheck
	$(BIN)/python -m pytest -m "not slow"

test-slow: dev-engine chromium
	$(BIN)/python -m pytest -m slow

lock-check: dev
	$(BIN)/builder lock --all --check

bench-install: dev
	$(BIN)/python benchmarks/bench_install.py

MSST_VENV := .bench/msst-venv

# benchmark-only reference environment (msst's code, and audio-separator's copy of it); never the project's
$(MSST_VENV)/.installed: benchmarks/requirements-msst.txt | $(BIN)/uv
	rm -rf $(MSST_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(MSST_VENV)
	$(BIN)/uv pip install --python $(MSST_VENV)/bin/python --quiet $(if $(WHEELHOUSE),--find-links $(WHEELHOUSE)) -r benchmarks/requirements-msst.txt
	$(BIN)/uv pip install --python $(MSST_VENV)/bin/python --quiet --no-deps msst==0.1.0 audio-separator==0.47.1
	touch $@

bench-engine: $(MSST_VENV)/.installed
	$(MSST_VENV)/bin/python benchmarks/bench_engine.py --json .bench/bench-engine.json --doc docs/PERFORMANCE.md

# where --precision highest's time goes, each part's floor, and the ceilings against msst (timed in the same process)
bench-engine-bounds: $(MSST_VENV)/.installed
	$(MSST_VENV)/bin/python benchmarks/engine_bounds.py --json .bench/engine-bounds.json --doc docs/PERFORMANCE.md

bench-frozen: dev-engine
	$(BIN)/python benchmarks/bench_frozen.py

# soxr's streaming resampler vs the hand-written one it replaced (read from git history)
bench-resample: dev-engine
	$(BIN)/python benchmarks/bench_resample.py --doc docs/PERFORMANCE.md

# the package stage vs the one before it (read from git), interleaved on dist/minimal-linux-x86_64/stems (make run first)
bench-package: dev
	$(BIN)/python benchmarks/bench_package.py --doc docs/PERFORMANCE.md

# N real `builder compare` runs with the defaults (about 5 min each here): RUNS=3 for fewer.
RUNS ?= 10
bench-compare-power: dev
	$(BIN)/python benchmarks/compare_power.py --runs $(RUNS) --doc docs/PERFORMANCE.md

compare-report: dev chromium
	$(BIN)/builder compare minimal-linux-x86_64 extended-linux-x86_64 --out docs/compare-minimal-vs-extended
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1800 \
	  --screenshot=docs/compare-minimal-vs-extended/report.png file://$(CURDIR)/docs/compare-minimal-vs-extended/report.html

# The document this project grew from (reference/environment-comparison-by-hand.md), measured:
# OLD and NEW as Linux profiles (benchmarks/seed/profiles/), installed as venvs, compared and diagnosed.
seed-report: dev
	$(BIN)/python benchmarks/seed_report.py

check-repro: dev
	$(BIN)/python scripts/check_repro.py

clean:
	rm -rf build dist .bench .repro
