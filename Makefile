# One command each. The README's two commands do the same without make.
.PHONY: run test lint gen

run:   ## start the service on localhost:50051 (embedded Postgres unless BATON_DATABASE_URL)
	python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/baton serve

test:  ## the whole test suite
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest

lint:  ## contract lint, code lint, types
	.venv/bin/buf lint && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

gen:   ## regenerate the Python stubs from proto/
	PATH="$(CURDIR)/.venv/bin:$$PATH" scripts/gen-proto
