# `make test` sets up .venv and runs the test suite; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first, so nothing pulls a CUDA build; then freeze it as a constraint.
	$(PIP) install torch==2.13.0
	$(PY) -m pip freeze | grep -i '^torch==' > $(VENV)/constraints.txt
	$(PIP) install -c $(VENV)/constraints.txt -e '.[train,test]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_scorers.py

clean:
	rm -rf $(VENV) build src/*.egg-info
