VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CPU_KERNELS := proxy_tasks/cpu_kernels/build/libcpu_kernels.so

.PHONY: venv search test test-fast lint mutation clean

venv: $(STAMP) $(CPU_KERNELS)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The CPU kernels: oneDNN convolutions, hand-written batch norm and max-pool (skipped with a message where g++ or oneDNN is missing)
$(CPU_KERNELS): $(STAMP) proxy_tasks/cpu_kernels/conv.cc proxy_tasks/cpu_kernels/pool.cc proxy_tasks/cpu_kernels/norm.cc proxy_tasks/cpu_kernels/adam.cc proxy_tasks/cpu_kernels/threefry.cc proxy_tasks/cpu_kernels/common.h proxy_tasks/cpu_kernels/build.py
	$(PY) -m proxy_tasks.cpu_kernels.build

search: $(STAMP) $(CPU_KERNELS)
	$(VENV)/bin/nas search

test: lint $(STAMP) $(CPU_KERNELS)
	$(PY) -m nas.preload -m pytest

# Everything but the tests that start real processes (Ray, subprocesses): marker `slow`.
test-fast: lint $(STAMP) $(CPU_KERNELS)
	$(PY) -m nas.preload -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Mutation testing of the modules whose bugs silently change a search's results, each against its
# own tests (pyproject.toml [tool.mutation.groups]; bench/results/mutation.md). Not part of `test`.
mutation: $(STAMP) $(CPU_KERNELS)
	$(PY) bench/mutation.py --fresh

clean:
	rm -rf $(VENV) build *.egg-info proxy_tasks/cpu_kernels/build
