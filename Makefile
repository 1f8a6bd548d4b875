# The commands the README shows. `make test` is what CI runs (via .ci/run).
PY ?= .venv/bin/python
VENV := .venv

.PHONY: prerequisites setup test lint typecheck generate unit integration bench paging demo demo-stop clean

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

# Debian packages the demo and the tests need (Prometheus, Alertmanager, Java, Chromium,
# tmux, ...): installed when missing, one line each; nothing on a machine that has them.
prerequisites:
	scripts/prerequisites

setup: prerequisites $(VENV)/.installed
	scripts/kafka fetch

# ruff, mypy strict (the package, then tests/ and bench/ as their own roots), the import
# contracts of .importlinter (docs/architecture.md's layers) and the dashboard lint
# (cxpulse.mixin.lint: dashboard-linter's rules, exclusions in grafana/.lint with a reason each).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy stream/cxpulse
	$(VENV)/bin/mypy --explicit-package-bases tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m cxpulse.mixin.lint grafana/dashboards

typecheck: setup
	$(VENV)/bin/mypy stream/cxpulse
	$(VENV)/bin/mypy --explicit-package-bases tests bench

# Rules and dashboards from targets.yaml (never edited by hand; a test fails when stale).
generate: setup
	$(VENV)/bin/cxpulse generate

# Two test files at a time (pytest-xdist, whole files per process: a file's tests share
# its broker and fixtures); the integration tests mostly wait on brokers and `for:`
# durations, so two processes fit two cores. TEST_WORKERS=0 runs them one by one.
# Files go out in collection order, the longest first (tests/conftest.py LONGEST_FIRST),
# not in xdist's default order (most tests first), which left the long files to the end.
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
TEST_WORKERS ?= 2
test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no test"; exit 1; fi; exit $$rc

unit: setup
	$(VENV)/bin/pytest -q tests/unit

integration: setup
	$(VENV)/bin/pytest -q tests/integration

# Every benchmark, one at a time, on a private broker; rewrites docs/benchmarks.md with
# the commit, the commands, the machine and the load average (about 15 min on 2 cores).
# BENCH=worker,core limits it to some; tests/integration/test_bench_smoke.py is CI's part.
BENCH ?=
bench: setup
	$(PY) bench/run_all.py $(if $(BENCH),--only $(BENCH))

# The long paging evaluation (issue 20): every incident class at ~20 to 5,000 tickets a
# day on three seeds through the generated rules; about an hour. Summary in docs/alerts.md.
paging: setup
	$(VENV)/bin/python bench/bench_paging.py

# SPEED=60 compresses an hour into a minute; Ctrl-C stops every part.
SPEED ?= 1
demo: setup
	scripts/demo --speed $(SPEED)

demo-stop:
	scripts/demo stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
