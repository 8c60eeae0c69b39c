# app-monitor: `make demo` runs the daemon against a throwaway PostgreSQL,
# `make test` installs what the tests need and runs them.
SHELL := /bin/bash
# resolved when a recipe runs, so after the `uv` target may have installed it
UV = $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: all uv sync deps demo test lint format bench clean

all: test

uv:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv || \
		python3 -m pip install --quiet --break-system-packages uv

sync: uv
	@$(UV) sync --locked --quiet

deps:
	@bash scripts/install-test-deps.sh

demo: sync
	$(UV) run monitor demo

test: sync deps
	$(UV) run pytest $(PYTEST_ARGS)

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: sync
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: sync deps
	@for b in bench/bench_*.py; do echo "== $$b"; $(UV) run python $$b || exit 1; done

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
