# The lab's two commands: `make demo` (the whole pipeline in small mode on CPU) and
# `make test` (the whole test suite). Both create or update .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed
DEMO_OUT ?= runs/demo
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test chromium app lab notebooks bench clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the builds on local disk; never let pip pick another torch
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's chromium drives the browser tests (Playwright uses its executable path).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: venv
	$(BIN)/labkit demo --out $(DEMO_OUT)

test: venv chromium
	$(BIN)/python -m pytest

app: venv
	$(BIN)/labkit app

# The notebooks' kernel is this .venv's Python (labkit.notebooks kernel checks it, or installs one into .venv).
lab: venv
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks \
		--MappingKernelManager.default_kernel_name=$$($(BIN)/python -m labkit.notebooks kernel)

notebooks: venv
	$(BIN)/python -m labkit.notebooks run

bench: venv
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO_OUT)
