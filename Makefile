# One venv, two commands: `make demo` (the main job, end to end) and `make test`.
# GPU users: `make setup TORCH=` keeps the torch already installed, or `TORCH="torch==2.13.0 --index-url ..."`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo paper-tables test lint bench clean

$(BIN)/.installed: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(strip $(TORCH)),$(BIN)/pip install -q $(TORCH))
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/ovmlv demo --out outputs/demo

paper-tables: setup
	$(BIN)/ovmlv claims --out outputs/claims --steps 100 --jobs 2 --extra-runs 20  # 25 runs, then up to 20 more: ~2.5 h on 2 cores; resumable

test: setup
	$(BIN)/python -m pytest tests
	$(BIN)/ruff check .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/label_encoder.py
	$(BIN)/python bench/video_encoder.py
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/synthetic_ceiling.py
	$(BIN)/python bench/label_bank.py
	$(BIN)/python bench/tagging.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/export_sizes.py

clean:
	rm -rf outputs .pytest_cache
