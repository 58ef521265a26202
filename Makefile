# Two commands set up a fresh machine: `make demo` (install + the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs system-packages

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, alone: this pins the CPU wheel so nothing later pulls a CUDA build.
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0 torchvision==0.28.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/memaudit demo

# The suite's Debian packages (scripts/system-packages.txt): installed when missing, or named.
system-packages:
	bash scripts/system_packages.sh

# One pytest worker per core (pytest-xdist; tests/conftest.py shares the cores among them).
test: install system-packages
	$(BIN)/python -m pytest -n auto --dist worksteal

# The documentation site (mkdocs, material theme) in site/; --strict: a broken link fails the build.
# The policy and CLI references are generated from the code first (scripts/docs_reference.py).
docs: install
	$(BIN)/python scripts/docs_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check memaudit tests
	$(BIN)/lint-imports
