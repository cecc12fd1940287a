# The two commands of the README: `make demo` and `make test`; `make bench` runs the benchmarks,
# `make drills` the reliability drills (writes RELIABILITY.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench drills lint services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/automation demo

services:
	bash scripts/ensure-services.sh

lint: $(STAMP)
	$(BIN)/ruff check automation tasks tests benchmarks drills beat_schedule.py
	$(BIN)/mypy --strict automation drills
	$(BIN)/mypy tasks beat_schedule.py

test: $(STAMP) services lint
	$(BIN)/python -m pytest -q

bench: $(STAMP) services
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_scaling_loo.py --jobs 2
	$(BIN)/python benchmarks/bench_scaling_loo.py --jobs 2 --capacities 50,100 \
		--held-out-from benchmarks/results/scaling_loo.json
	$(BIN)/python benchmarks/bench_anomaly.py
	$(BIN)/python benchmarks/bench_alerting.py
	$(BIN)/python benchmarks/bench_scaling_loop.py
	$(BIN)/python benchmarks/bench_workers.py
	$(BIN)/python benchmarks/bench_rca.py
	$(BIN)/python benchmarks/bench_storm.py
	$(BIN)/python benchmarks/bench_escalation.py --interval 5
	$(BIN)/python benchmarks/bench_canary.py
	$(BIN)/python benchmarks/bench_canary_timing.py
	$(BIN)/python benchmarks/bench_remediation.py

# Each drill starts its own Redis and PostgreSQL (not the shared services): see RELIABILITY.md.
drills: $(STAMP)
	$(BIN)/python -m drills

clean:
	rm -rf $(VENV) .automation .mypy_cache .ruff_cache
