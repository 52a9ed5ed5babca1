# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_TEST_TOOLS := dcmtk orthanc orthanc-dicomweb dicom3tools chromium
PYTEST_ARGS ?=

.PHONY: run test lint bench clean debian-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

# One command for test and ml extras, so pip resolves torch once, as the ml extra pins it.
$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,ml]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/kaapana demo
	$(BIN)/kaapana serve

debian-tools:
	@missing=""; \
	for package in $(DEBIAN_TEST_TOOLS); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" \
			|| missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: $(VENV)/.installed-test debian-tools
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest --numprocesses auto $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed-test debian-tools
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/query.py
	$(BIN)/python benchmarks/dicomweb.py
	$(BIN)/python benchmarks/series_media.py
	$(BIN)/python benchmarks/catalog.py
	$(BIN)/python benchmarks/datasets.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/operators.py
	$(BIN)/python benchmarks/federation.py

clean:
	rm -rf $(VENV) kaapana-data .pytest_cache
