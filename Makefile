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

.PHONY: demo test bench reliability package-check clean system-deps

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

# Servers the tests start on 127.0.0.1 that come from Debian's packages (sshd, rsync).
system-deps:
	@if ! command -v rsync >/dev/null || [ ! -x /usr/sbin/sshd ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing openssh-server and rsync (Debian packages) for the tests"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      openssh-server rsync >/dev/null; \
	  else \
	    echo "note: sshd or rsync missing and not root: the ssh tests will be skipped"; \
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

test: $(VENV)/.installed-test system-deps $(AZURITE)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# The full crash sweeps, random kills and fuzzing (`make test` runs a sample of each)
reliability: $(VENV)/.installed-test system-deps
	$(PY) bench/chaos.py
	$(PY) bench/fuzz.py
	$(PY) bench/append_crash.py

# The wheel as users install it, in fresh venvs: base, [virtual], [append] (.ci/run runs it)
package-check:
	bash .ci/package-check

bench: $(VENV)/.installed-bench
	$(PY) bench/check_scaling.py
	$(PY) bench/fetch_throughput.py

clean:
	rm -rf $(VENV) .venv-demo build dist .pytest_cache .hypothesis
