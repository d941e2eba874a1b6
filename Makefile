# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv if absent and install what they need. TORCH pins the wheel this machine carries;
# the package itself only asks for torch>=2.6, so users bring their own build (CUDA or CPU).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,tensorboard]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gexbert demo --output reports/demo --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gexbert_hf tests train data_scripts modeling

clean:
	rm -rf $(VENV) build dist *.egg-info
