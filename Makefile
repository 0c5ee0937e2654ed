# The two commands of the README: `make demo` and `make test`.
# Each creates .venv if absent and installs the project with what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[bench]'
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) -m datamanifest.demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

bench: $(VENV)/.installed-bench
	$(PY) bench/check_scaling.py
	$(PY) bench/fetch_throughput.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
