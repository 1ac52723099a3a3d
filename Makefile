# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test lint typecheck demo bench bench-peers compile clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/routectl check
	$(BIN)/pytest -q

compile: setup
	$(BIN)/routectl compile

# Compile the repo's routing.yaml and serve it; the echo provider answers with no API key:
#   curl -s localhost:8080/v1/chat/completions -H 'Authorization: Bearer rk-demo-john-dev' \
#     -H 'Content-Type: application/json' -d '{"model":"auto(free)","messages":[{"role":"user","content":"hi"}]}'
demo: setup
	$(BIN)/routectl compile
	$(BIN)/routectl serve --host 127.0.0.1 --port $${PORT:-8080}

clean:
	rm -rf $(VENV) build src/*.egg-info
