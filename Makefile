# lakegov - the two commands a newcomer needs are `make demo` and `make test`.
# Each creates or refreshes the virtualenv (.venv) from the pinned requirements first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SEC_VENV := .venv-sec
CHECKOV := $(SEC_VENV)/bin/checkov
# sam build needs the runtime's interpreter (python3.12) on PATH: pyenv provides it here.
PYENV_PYTHONS ?= 3.11.7:3.12.1:3.13.0
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv demo test test-fast lint security build bench lock clean local

help:
	@echo "make demo   - run the scripted walk-through on the embedded runtime"
	@echo "make test   - run the test suite (unit, integration, e2e)"
	@echo "make lint   - ruff, mypy, cfn-lint, sam validate --lint and checkov"
	@echo "make build  - sam build"
	@echo "make bench  - benchmarks (writes benchmarks/out/)"
	@echo "make local  - lakegov local run --outputs .lakegov/outputs.json"

venv: $(STAMP)

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(CHECKOV): requirements/security.txt
	@test -x $(SEC_VENV)/bin/python || $(PYTHON) -m venv $(SEC_VENV)
	$(SEC_VENV)/bin/python -m pip install --quiet -r requirements/security.txt
	@touch $(CHECKOV)

$(SAM): requirements/sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/sam.txt
	@touch $(SAM)

demo: $(STAMP)
	$(BIN)/lakegov demo

local: $(STAMP)
	@mkdir -p .lakegov
	$(BIN)/lakegov local run --outputs .lakegov/outputs.json

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

lint: $(STAMP) $(SAM)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml templates/*.yaml
	$(SAM) validate --lint --region us-east-1
	$(MAKE) security

security: $(CHECKOV)
	$(CHECKOV) --config-file .checkov.yaml --skip-download -f template.yaml templates/*.yaml

build: $(SAM)
	PYENV_VERSION=$(PYENV_PYTHONS) $(SAM) build --template template.yaml

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements/dev.in
	$(BIN)/python -m pip freeze --all --exclude-editable --exclude pip --exclude setuptools | grep -v '^lakegov' > requirements/dev.txt

clean:
	rm -rf $(VENV) $(SAM_VENV) $(SEC_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .lakegov
