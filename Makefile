# The two commands of the README: `make demo` and `make test`.
# Each creates .venv if absent and installs the project with what it needs
# (VENV=.venv-demo make demo: the same in another, fresh venv, as .ci/run does).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# pytest-xdist workers for `make test`: the suite mostly waits on child processes and
# servers, so more workers than cores pay (measured in the README's "The two commands")
TEST_WORKERS ?= 4

.PHONY: demo test test-setup test-tools peers bench reliability package-check clean system-deps docs docs-serve

# The venv gets uv (from PyPI) beside pip: it installs the [test] extra in about 17 s where
# pip takes 45 s on a fresh machine (same versions). A venv without uv installs with pip.
# Both compile the bytecode at install: where PYTHONDONTWRITEBYTECODE is set, a module
# without it is compiled again in every process (the tests start thousands of them), so
# the project's own src/ is compiled too before the tests and the demo run.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	-$(PIP) install --quiet uv

INSTALL = if $(PY) -m uv --version >/dev/null 2>&1; then \
	  $(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) $(1); \
	  else $(PIP) install --quiet $(1); fi

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(call INSTALL,-e '.[test]')
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(call INSTALL,-e '.[demo]')
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(PY)
	$(call INSTALL,-e '.[docs]')
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(call INSTALL,-e '.[bench]')
	touch $@

demo: $(VENV)/.installed-demo
	@$(PY) -m compileall -q src >/dev/null
	$(PY) -m datamanifest.demo

# Servers the tests start on 127.0.0.1 that come from Debian's packages (sshd, rsync).
# Graphviz's `dot` (Debian package graphviz) reads what `datamanifest graph --dot` writes;
# curl is what the trust how-to's shell-template dataset runs; zsh and fish complete with
# the scripts `datamanifest completion` prints.
system-deps:
	@if ! command -v rsync >/dev/null || [ ! -x /usr/sbin/sshd ] || ! command -v dot >/dev/null \
	    || ! command -v curl >/dev/null || ! command -v zsh >/dev/null \
	    || ! command -v fish >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing openssh-server, rsync, graphviz, curl, zsh and fish (Debian packages) for the tests"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      openssh-server rsync graphviz curl zsh fish >/dev/null; \
	  else \
	    echo "note: sshd, rsync, dot, zsh or fish missing and not root: the ssh, graph and completion tests will be skipped"; \
	  fi; \
	fi

# Azurite (the Azure Blob Storage emulator) comes from the npm registry, for the az:// tests
AZURITE := .cache/azurite/node_modules/.bin/azurite-blob
$(AZURITE):
	@if command -v npm >/dev/null; then \
	  echo "installing Azurite (npm) into .cache/azurite for the az:// tests"; \
	  mkdir -p .cache/azurite && \
	  npm install --prefix .cache/azurite --silent --no-audit --no-fund azurite@3.37.0 >/dev/null 2>&1 \
	    || echo "note: npm install azurite failed: the az:// tests will fail"; \
	else \
	  echo "note: npm missing: the az:// tests will be skipped"; \
	fi

# The SARIF 2.1.0 JSON Schema, as the npm package @microsoft/jest-sarif ships it, for the
# tests of `check --output-format sarif` (only the schema file is kept; nothing is run)
SARIF_SCHEMA := .cache/sarif/sarif-2.1.0-rtm.5.json
$(SARIF_SCHEMA):
	@if command -v npm >/dev/null; then \
	  echo "fetching the SARIF 2.1.0 schema (npm @microsoft/jest-sarif) into .cache/sarif"; \
	  mkdir -p .cache/sarif && \
	  ( cd .cache/sarif && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null 2>&1 && \
	    tar -xzf microsoft-jest-sarif-1.0.0-beta.0.tgz -O package/lib/schemas/sarif-2.1.0-rtm.5.json \
	      > sarif-2.1.0-rtm.5.json.tmp && mv sarif-2.1.0-rtm.5.json.tmp sarif-2.1.0-rtm.5.json && \
	    rm -f microsoft-jest-sarif-1.0.0-beta.0.tgz ) \
	    || echo "note: npm pack @microsoft/jest-sarif failed: the SARIF schema test will fail"; \
	else \
	  echo "note: npm missing: the SARIF schema test will be skipped"; \
	fi

# Mermaid's own parser (npm mermaid, in a DOM from jsdom) into .cache/mermaid, for the test
# that reads what `datamanifest graph --mermaid` writes as GitHub and Material for MkDocs do
MERMAID := .cache/mermaid/node_modules/mermaid/package.json
$(MERMAID):
	@if command -v npm >/dev/null; then \
	  echo "installing mermaid and jsdom (npm) into .cache/mermaid for the graph tests"; \
	  mkdir -p .cache/mermaid && \
	  npm install --prefix .cache/mermaid --silent --no-audit --no-fund mermaid@11.17.2 \
	    jsdom@24.1.3 >/dev/null 2>&1 \
	    || echo "note: npm install mermaid failed: the Mermaid test will fail"; \
	else \
	  echo "note: npm missing: the Mermaid test will be skipped"; \
	fi

test-tools: $(SARIF_SCHEMA) $(MERMAID)

# VirtualiZarr 2.8 and kerchunk in a Python 3.12 venv of their own (the interop tests read
# our exports with them; skipped, with a note, where no Python 3.12 is found)
peers: $(VENV)/.installed-test
	@$(PY) -c 'from datamanifest.testing.venvs import main; main()'

# What the tests need, installed side by side (the venv, the peers' venv, Debian's packages,
# npm's)
test-setup: $(VENV)/.installed-test peers system-deps $(AZURITE) test-tools

test:
	@$(MAKE) --no-print-directory -j4 test-setup
	@$(PY) -m compileall -q src >/dev/null
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# The full crash sweeps, random kills and fuzzing (`make test` runs a sample of each)
reliability: $(VENV)/.installed-test system-deps $(AZURITE)
	DATAMANIFEST_THOROUGH=1 $(PY) -m pytest -q -n $(TEST_WORKERS) tests/test_properties.py \
	  tests/test_properties_documents.py tests/test_format_migrate.py tests/test_conformance.py \
	  tests/test_object_stores.py
	$(PY) bench/chaos.py
	$(PY) bench/fuzz.py
	$(PY) bench/append_crash.py

# The wheel as users install it, in fresh venvs: base, [virtual], [append] (.ci/run runs it)
package-check:
	bash .ci/package-check

# Every performance benchmark, one at a time (bench/run.py; about a quarter of an hour):
# writes bench/results.json and bench/results.md, the one table of every figure beside its
# peer and its floor. Exits non-zero if a script failed (after writing what it has).
# BENCH_ARGS='--only fetch_many' runs one; BENCH_ARGS=--quick a smoke run into build/.
BENCH_ARGS ?=
bench: $(VENV)/.installed-bench
	@$(PY) -m compileall -q src >/dev/null
	$(PY) bench/run.py --source 'make bench' $(BENCH_ARGS)

# The documentation site (docs/mkdocs.yml; pages in docs/pages/, generated ones made by
# docs/hooks.py): a warning fails the build. Output: build/site/.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -f docs/mkdocs.yml

# Live preview on http://127.0.0.1:8000/ (rebuilds on every edit)
docs-serve: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve -f docs/mkdocs.yml -a 127.0.0.1:8000

clean:
	rm -rf $(VENV) .venv-demo build dist .pytest_cache .hypothesis
