# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test test-fast lint typecheck browser screenshot demo bench bench-peers compile clean container-test rollout-test fuzz soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy

# The browser tests (dashboard, CORS) drive Debian's chromium:
# installed from the OS packages as root when missing; otherwise `make test` stops and says so.
CHROMIUM ?= /usr/bin/chromium
browser:
	@[ -x $(CHROMIUM) ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& { DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium >/dev/null 2>&1 \
		     || { timeout 300 apt-get update -qq >/dev/null 2>&1 \
		          && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium >/dev/null; }; }; } \
		|| { echo "make test: the dashboard's browser test needs Debian's chromium at $(CHROMIUM); as root make test installs it (apt-get install chromium), otherwise install it yourself" >&2; exit 1; }
	@[ -x $(CHROMIUM) ] || { echo "make test: $(CHROMIUM) is still missing after apt-get install chromium" >&2; exit 1; }

test: lint typecheck browser
	$(BIN)/routectl check
	$(BIN)/pytest -q

# docs/dashboard.png: the dashboard's browser test against a live server with traffic, kept
screenshot: setup browser
	ROUTECTL_DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(BIN)/pytest -q tests/db/test_dashboard_browser.py

# The edit-run loop: lint and the tests that need no PostgreSQL, start no server and take
# under a second (markers in pyproject.toml). Reuses .venv as it is: a stale install is `make test`'s job.
test-fast:
	@[ -f $(STAMP) ] || $(MAKE) setup
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q -m "not db and not e2e and not slow"

# Deploying (docs/deploying.md). Minutes, so not in `make test` (which lints the Dockerfile and
# validates deploy/kubernetes offline): build both images with podman (or docker), run them, curl
# them, remove what was made. Installs podman and debootstrap from Debian when they are missing (a docker
# command without a daemon it can reach does not count).
container-test:
	@command -v podman >/dev/null 2>&1 || docker info >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 \
		&& [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq podman debootstrap runc >/dev/null; }
	@command -v podman >/dev/null 2>&1 && ! command -v debootstrap >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq debootstrap >/dev/null || true
	deploy/container/test.sh

# The rollout proof alone, with its figures: three `serve --watch` replicas, a ConfigMap-style
# table swap under load, a corrupt table refused, SIGTERM mid-stream (also part of `make test`).
rollout-test: setup
	$(BIN)/pytest -q -s tests/runtime/test_rollout.py

compile: setup
	$(BIN)/routectl compile

# Issue 13's larger runs (README "Reliability and security"): the compiler's property tests with
# many more documents, and schemathesis against a live `routectl serve` for five minutes. Bounded.
FUZZ_EXAMPLES ?= 2000
FUZZ_SECONDS ?= 300
fuzz: setup
	ROUTECTL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ROUTECTL_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		$(BIN)/pytest -q -s -p no:randomly tests/compiler/test_fuzz.py tests/runtime/test_openapi.py

# A bounded soak (minutes): fixed request rate, random upstream faults, table reloads valid and
# corrupt; prints requests, gateway-attributable errors, p99, RSS and fds start -> end.
SOAK_SECONDS ?= 180
soak: setup
	$(BIN)/python tests/soak/soak.py --seconds $(SOAK_SECONDS)

# Compile the repo's routing.yaml and serve it; the echo provider answers with no API key:
#   curl -s localhost:8080/v1/chat/completions -H 'Authorization: Bearer rk-demo-john-dev' \
#     -H 'Content-Type: application/json' -d '{"model":"auto(free)","messages":[{"role":"user","content":"hi"}]}'
demo: setup
	$(BIN)/routectl compile
	$(BIN)/routectl serve --host 127.0.0.1 --port $${PORT:-8080}

# Benchmark harness (docs/performance.md): bounded in time, 127.0.0.1 only. Installs wrk from the OS
# packages when it is missing and that is possible; otherwise bench/run.py uses its Python load generator.
bench: setup
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& (timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1 \
		    || { timeout 120 apt-get update -qq >/dev/null 2>&1 && timeout 300 apt-get install -y -qq wrk >/dev/null 2>&1; }) \
		|| echo "bench: wrk not installed; using the Python load generator"; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# LiteLLM in its own venv for the side-by-side figures. Pinned exactly: 1.106 is the line the issue measured, it
# predates the compromised 1.107.0 release, and its pins resolve here. Time-bounded; never breaks `make bench`.
LITELLM_VENV := bench/.peers/litellm-venv
LITELLM_SPEC ?= litellm[proxy]==1.106.0
bench-peers:
	@mkdir -p bench/.peers
	@[ -x $(LITELLM_VENV)/bin/python ] || $(PYTHON) -m venv $(LITELLM_VENV)
	timeout 900 $(LITELLM_VENV)/bin/pip install -q --disable-pip-version-check '$(LITELLM_SPEC)' \
		&& $(LITELLM_VENV)/bin/python -c "import importlib.metadata as m; print('litellm', m.version('litellm'), 'installed in $(LITELLM_VENV)')" \
		|| echo "bench-peers: could not install $(LITELLM_SPEC); make bench will report LiteLLM as not installed"
	@bench/install_peers.sh  # nginx, the Portkey gateway, pyreqwest: each skipped with a reason

clean:
	rm -rf $(VENV) build src/*.egg-info
