# The two commands that do everything on a fresh machine:
#   make demo   -- setup + the main job on the embedded default (GRPO on SmolLM2-135M-Instruct)
#   make test   -- setup + the whole test suite
PY      := .venv/bin/python
PYTEST  := .venv/bin/python -m pytest
JOBS    ?= 1

.PHONY: setup test test-unit test-kernels test-distributed demo bench ctest clean

setup:
	@./scripts/setup.sh

# Exit status of pytest is kept: 5 ("no tests collected") is a failure, never hidden.
test: setup
	$(PYTEST) tests -q --durations=25

test-unit: setup
	$(PYTEST) tests -q -m "not kernels and not distributed"

test-kernels: setup
	$(PYTEST) tests -q -m kernels

test-distributed: setup
	$(PYTEST) tests -q -m distributed

demo: setup
	$(PY) -m ifrl.demo

bench: setup
	$(PY) -m ifrl bench all

ctest: setup
	cmake -S . -B build -DPython_EXECUTABLE=$(CURDIR)/$(PY) >/dev/null
	ctest --test-dir build --output-on-failure

clean:
	rm -rf build .pytest_cache
