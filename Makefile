# Two commands: `make run` (start everything locally) and `make test` (install and run the suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_GET := env DEBIAN_FRONTEND=noninteractive apt-get -y -q

.PHONY: run test test-fast bench down status system-deps test-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV) || { $(APT_GET) install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(PY) -m cluster up

down:
	$(PY) -m cluster down

status:
	$(PY) -m cluster status

# redis-server, Debian's Chromium (browser tests) and strace (the fsync-count test), installed with apt when missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && $$SUDO $(APT_GET) install $$missing; \
	fi

test-deps: $(VENV)/.installed-test system-deps

# The edit loop: real Redis, no Ray, no browser (tests that need neither), in seconds.
test-fast: $(VENV)/.installed-test
	@command -v redis-server >/dev/null || $(MAKE) system-deps
	$(PY) -m pytest --fast -q $(PYTEST_ARGS)

test: test-deps
	rm -f .coverage .coverage.*
	$(PY) -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(VENV)/.installed $(VENV)/.installed-test $@

# Benchmarks against the Celery peer in ../shared/peer (see bench/README.md); not part of `make test`.
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && $$SUDO $(APT_GET) install wrk; }
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .coverage .coverage.* htmlcov test-artifacts
