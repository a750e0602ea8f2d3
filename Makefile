VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv search test clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

search: $(STAMP)
	$(VENV)/bin/nas search

test: $(STAMP)
	$(PY) -m nas.preload -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
