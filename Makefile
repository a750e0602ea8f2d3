VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ONEDNN_CONV := proxy_tasks/onednn/build/libonednn_conv.so

.PHONY: venv search test test-fast lint mutation clean

venv: $(STAMP) $(ONEDNN_CONV)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# oneDNN convolutions for the CPU (skipped with a message where g++ or oneDNN is missing)
$(ONEDNN_CONV): $(STAMP) proxy_tasks/onednn/conv.cc proxy_tasks/onednn/pool.cc proxy_tasks/onednn/norm.cc proxy_tasks/onednn/common.h proxy_tasks/onednn/build.py
	$(PY) -m proxy_tasks.onednn.build

search: $(STAMP) $(ONEDNN_CONV)
	$(VENV)/bin/nas search

test: lint $(STAMP) $(ONEDNN_CONV)
	$(PY) -m nas.preload -m pytest

# Everything but the tests that start real processes (Ray, subprocesses): marker `slow`.
test-fast: lint $(STAMP) $(ONEDNN_CONV)
	$(PY) -m nas.preload -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Mutation testing of the modules whose bugs silently change a search's results, each against its
# own tests (pyproject.toml [tool.mutation.groups]; bench/results/mutation.md). Not part of `test`.
mutation: $(STAMP) $(ONEDNN_CONV)
	$(PY) bench/mutation.py --fresh

clean:
	rm -rf $(VENV) build *.egg-info proxy_tasks/onednn/build
