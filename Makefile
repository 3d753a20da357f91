# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lab lint bench samples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[notebooks,dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name auditkit --display-name "auditkit" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/auditkit demo

test: $(STAMP)
	$(BIN)/ruff check auditkit tests benchmarks scripts
	$(BIN)/pytest -q tests
	$(BIN)/pytest -q --nbval-lax notebooks

lab: $(STAMP)
	$(BIN)/pip install --quiet -e '.[notebooks,dev,lab]'
	$(BIN)/jupyter lab notebooks/explore.ipynb

lint: $(STAMP)
	$(BIN)/ruff check auditkit tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_cloudtrail.py
	$(BIN)/python benchmarks/bench_gcp.py
	$(BIN)/python benchmarks/bench_azure.py
	$(BIN)/python benchmarks/bench_findings.py

samples: $(STAMP)
	$(BIN)/python scripts/make_sample_logs.py sample_logs

clean:
	rm -rf $(VENV) reports .pytest_cache
