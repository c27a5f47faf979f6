# The README's two commands: `make demo` and `make test`. Both create .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install demo test lint format clean bench soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# `make demo PORT=8081` when 8080 is taken.
PORT ?= 8080
demo: $(STAMP)
	$(VENV)/bin/deploybot demo --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

# Most tests wait on loopback servers rather than the CPU, so more workers than cores pays off: on 2 cores the
# suite took 4m12s in one process and 1m23s with 4 workers (pytest-xdist). TEST_WORKERS=0 runs it in-process.
TEST_WORKERS ?= 4
test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS)

# Speed targets (ack latency, reconcile pass, notifier): `make bench BENCH_ARGS=--quick` for a short run.
# PostgreSQL too when BENCH_DATABASE_URL is set. Not part of `make test` or CI: these machines are noisy.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# The reliability suite at full scale (tests/reliability, figures in RELIABILITY.md): a few minutes. `make test`
# runs the same scenarios small. PostgreSQL too when TEST_DATABASE_URL is set (CI sets it). The soak tests mostly
# wait (64 of them used 333 s of CPU over 1,608 s of worker time), so 8 workers on 2 cores; each is handed one test
# at a time (--maxschedchunk 1) and tests/reliability/conftest.py puts the longest first. The figures check fails
# the target (exit 1, naming the row) if any run lost, duplicated or applied something twice, or acked in >= 3 s.
FIGURES ?= reliability-figures.jsonl
SOAK_WORKERS ?= 8
soak: $(STAMP)
	rm -f $(FIGURES)
	DEPLOYBOT_SOAK=1 RELIABILITY_FIGURES=$(FIGURES) $(VENV)/bin/pytest -q -n $(SOAK_WORKERS) --maxschedchunk 1 \
		--timeout 900 tests/reliability
	$(PY) -m tests.reliability.figures $(FIGURES)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
