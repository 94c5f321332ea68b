# rightsizer — developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help setup demo test unit lint fmt image bench bench-soak bench-operator bench-scale bench-apply bench-inplace bench-report bench-vs-krr components sandbox-up sandbox-down clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## create .venv and install rightsizer with its dev tools

demo: setup  ## the operator on the sandbox (or the KUBECONFIG cluster): workloads, a week of history, recommendations
	VENV=$(VENV) scripts/demo

components:  ## build/reuse the sandbox's binaries (Go, cached outside the repo) and Prometheus
	bash scripts/build-components.sh

lint: setup  ## ruff (lint + format check), mypy --strict, and imports only pointing down the data flow
	$(BIN)/ruff check operator tests bench scripts
	$(BIN)/ruff format --check operator tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup  ## fast tests only (no sandbox)
	$(BIN)/pytest tests/unit

test: setup components lint  ## the whole suite: lint, unit, and tests against the real sandbox
	$(BIN)/pytest

image:  ## build the operator image with buildah from a Debian base built here (root; docs/install.md); `make test` then checks and runs it
	bash scripts/image.sh

fmt: setup  ## format and autofix
	$(BIN)/ruff format operator tests bench
	$(BIN)/ruff check --fix operator tests bench

bench: setup  ## engine benchmark (prints wall time, samples/s, peak RSS)
	$(BIN)/python bench/bench_engine.py

bench-soak: setup  ## 90 simulated days of daily rollouts + CronJob churn through the reconcile: RSS, entries held, checkpoint bytes per week
	$(BIN)/python bench/bench_soak.py

bench-operator: setup components  ## operator at scale: 1,000 Deployments on kwok nodes, time to status, API requests, peak RSS
	$(BIN)/python bench/bench_operator_scale.py

bench-scale: setup components  ## recommendation objects at scale: 2,000 Deployments in 20 namespaces, one policy each (SCALE_ARGS="--deployments 10000 ...")
	$(BIN)/python bench/bench_scale.py $(SCALE_ARGS)

bench-apply: setup components  ## auto-apply at scale: 1,000 opted-in Deployments, time until all are applied under the rollout limit, API requests per apply
	$(BIN)/python bench/bench_auto_apply.py

bench-inplace: setup components  ## in-place resize at scale: 1,000 opted-in Deployments × 2 pods (time until all resized, API requests per pod, RSS), then webhook latency at 50 pod creations/s (INPLACE_ARGS="--deployments 200 ...")
	nice -n 10 $(BIN)/python bench/bench_inplace.py $(INPLACE_ARGS)

bench-report: setup components  ## report vs bare PromQL fetches on 1,000 containers × 7 days
	$(BIN)/python bench/bench_report.py

BENCH_KRR_ARGS ?=
bench-vs-krr: setup  ## report vs KRR side by side (issue 17); cache in $$RIGHTSIZER_BENCH_KRR_DIR; args in BENCH_KRR_ARGS
	$(BIN)/python bench/bench_vs_krr.py $(BENCH_KRR_ARGS)

sandbox-up: setup components  ## start the local control plane + Prometheus
	scripts/sandbox up

sandbox-down:  ## stop the sandbox
	scripts/sandbox down

clean:  ## remove the virtualenv and caches (not the component cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
