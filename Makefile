# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?=
OUT ?= out/run
ARGS ?=

.PHONY: run test test-fast bench install compile clean chromium java

## the virtual environment: uv installs into it (parallel downloads and byte-compiling: 48 s against
## pip's 58 s here); pip if uv cannot be had. Byte-compiled at install, so that test workers and CLI
## subprocesses do not each compile pandas, scikit-learn and PySpark on their first import
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
	  && $(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]" \
	  || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

## chromium: the browser the dashboard and report tests drive (Debian's package;
## needs root or sudo, as on CI). Skipped when a chromium is already on PATH.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

## java: Java 17+ for the Spark engine's tests (Debian's OpenJDK 17; needs root or sudo,
## as on CI). Skipped when a java of version 17 or newer is on PATH.
java:
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p'); \
	[ -n "$$v" ] && [ "$$v" -ge 17 ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless; }

## the package's own modules byte-compiled too (the editable install reads them from src/): where
## PYTHONDONTWRITEBYTECODE is set, as on this machine, every process compiled 60-90 of them from
## source at its start (0.12-0.14 s of each `customerlens` command, its worker process and every CLI
## test). Up-to-date files are skipped, so this costs little before each target.
compile: $(STAMP)
	$(BIN)/python -m compileall -q src

install: compile

## make run [DATA=path/to/file.csv] [OUT=out/run] [ARGS="--as-of 2011-09-09"]
run: compile
	$(BIN)/customerlens run $(DATA) --out $(OUT) $(ARGS)

## make test: everything CI runs (slow suites included), one worker per core; a test module
## stays on one worker (--dist loadscope), so its module fixtures are computed once. (A worker more
## than cores was measured slower on a fresh clone: 8m50s against 7m19s on 2 cores.)
## Each worker's numpy/scikit-learn BLAS on one thread: two workers with a BLAS thread per core each
## fought over 2 cores (measured: pytest 472.6 s with the default threads, 385.0 s with one; same results).
## And each run in one process (CUSTOMERLENS_WORKERS=1): the test workers fill the cores already, a
## recommender worker process per run would only add its start-up; the tests that are about the
## worker process ask for it (workers=2).
WORKERS ?= auto
ONE_THREAD = OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 CUSTOMERLENS_WORKERS=1
test: compile chromium java
	$(ONE_THREAD) $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --durations=15 $(ARGS)

## make test-fast: skip the slow suites (Spark, the Online Retail backtest, the browser runs)
test-fast: compile
	$(ONE_THREAD) $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope -m "not slow" $(ARGS)

## make bench: the benchmark scripts; figures go to benchmarks/results/
bench: compile
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_segment.py --check-sample
	$(BIN)/python benchmarks/bench_recommend.py
	$(BIN)/python benchmarks/bench_value.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_peers.py
	$(BIN)/python benchmarks/bench_lifetimes.py
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
