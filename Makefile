# atedash: the two commands are `make run` and `make test` (`make check` is the fast loop while you
# work); everything else is what they build on.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The dev cluster (make run) and the test cluster (make test) live on different ports,
# so running the tests never stops the store a developer is looking at.
RUN_CLUSTER_PORT ?= 7100
TEST_CLUSTER_PORT ?= 7200
HOST ?= 127.0.0.1
PORT ?= 8000
# Bytecode is written (__pycache__, ignored by git) even where the environment says not to: every
# pytest worker and every process a test starts (gunicorn, manage.py) would otherwise compile
# atedash/ and rewrite the test modules again, seconds of CPU each time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test check test-clusters-stop setup cluster-start cluster-stop proto bench bench-http bench-ops bench-walk clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed
	scripts/ensure-system redis

cluster-start: setup
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) scripts/cluster start

cluster-stop:
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) scripts/cluster stop

run: cluster-start
	HOST=$(HOST) PORT=$(PORT) ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) scripts/run-local

# Test workers (pytest-xdist, tests shared out and stolen when a worker runs dry): much of the suite waits
# on the store or a browser (failovers, outages, pages), so two workers overlap that (a third was no faster
# on 2 shared cores: 516 s against 531 s). Each has its own cluster, 20 ports apart (tests/conftest.py);
# TEST_WORKERS=1 runs everything in one process.
TEST_WORKERS ?= 2
TEST_CLUSTERS = $(shell for i in $$(seq 0 $$(( $(TEST_WORKERS) - 1 ))); do echo $$i; done)
# The clusters start (and stop) side by side: a start is mostly waiting on the nodes' handshakes.
test-clusters = { pids=(); for i in $(TEST_CLUSTERS); do \
	  dir=$(CURDIR)/.cluster-test; [ $$i = 0 ] || dir=$$dir-$$i; \
	  ATEDASH_CLUSTER_PORT=$$(( $(TEST_CLUSTER_PORT) + 20 * $$i )) ATEDASH_CLUSTER_DIR=$$dir scripts/cluster $(1) & pids+=($$!); \
	done; failed=; for pid in "$${pids[@]}"; do wait $$pid || failed=1; done; [ -z "$$failed" ]; }

# The static checks of `make check` and `make test`: lint and format first (a second), then types
# and the import contracts (pyproject.toml) in the background, beside the cluster start and the
# tests: mypy is the slowest step on a fresh clone (no cache). Their output is shown, and their
# verdict counts, once the tests are done (static-checks-wait).
static-checks = $(VENV)/bin/ruff check && $(VENV)/bin/ruff format --check \
	&& { { $(VENV)/bin/mypy && $(VENV)/bin/lint-imports --no-logo; } >.static-checks.out 2>&1 & static_pid=$$!; }
static-checks-wait = wait $$static_pid || { echo "make: mypy or lint-imports failed:"; status=1; }; \
	cat .static-checks.out; rm -f .static-checks.out

test: setup
	@date +%s > .test-started
	@scripts/ensure-system browser
	status=0; \
	$(static-checks) || exit 1; \
	$(call test-clusters,stop) >/dev/null; \
	$(call test-clusters,start) || status=1; \
	[ $$status != 0 ] || ATEDASH_TEST_CLUSTER_PORT=$(TEST_CLUSTER_PORT) ATEDASH_TEST_CLUSTER_DIR=$(CURDIR)/.cluster-test \
	  HYPOTHESIS_PROFILE=ci $(PY) -m pytest $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist worksteal) \
	  $(PYTEST_ARGS) || status=$$?; \
	$(call test-clusters,stop) || true; \
	$(static-checks-wait); \
	echo "make test: $$(( $$(date +%s) - $$(cat .test-started) )) s in all"; rm -f .test-started; \
	exit $$status

# The fast loop (under a minute): the static checks, then the tests that need no browser, no fault
# injection and no other process (markers in pytest.ini), with fewer hypothesis examples
# (tests/hypothesis_profiles.py). The test clusters are started if need be and left running, so
# the next `make check` reuses them (`make test` restarts them; `make test-clusters-stop` stops them).
CHECK_MARKERS ?= not browser and not slow and not process
check: setup
	@date +%s > .check-started
	status=0; \
	$(static-checks) || exit 1; \
	$(call test-clusters,start) >/dev/null || status=1; \
	[ $$status != 0 ] || ATEDASH_TEST_CLUSTER_PORT=$(TEST_CLUSTER_PORT) ATEDASH_TEST_CLUSTER_DIR=$(CURDIR)/.cluster-test \
	  HYPOTHESIS_PROFILE=dev $(PY) -m pytest -q $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist worksteal) \
	  -m "$(CHECK_MARKERS)" $(PYTEST_ARGS) || status=$$?; \
	$(static-checks-wait); \
	echo "make check: $$(( $$(date +%s) - $$(cat .check-started) )) s in all"; rm -f .check-started; \
	exit $$status

test-clusters-stop:
	$(call test-clusters,stop)

# Regenerates storage/ateapi_pb2.py and its type stub (.pyi, read by mypy) from storage/ateapi.proto
# (a test checks they match).
proto: $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Istorage --python_out=storage --pyi_out=storage storage/ateapi.proto

bench: cluster-start
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) $(PY) bench/storage_bench.py

bench-http: cluster-start
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) $(PY) bench/http_bench.py

# Consistency check and backup/restore at 100k actors (they flush the dev cluster, as `bench` does).
bench-ops: cluster-start
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) $(PY) bench/check_bench.py
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) $(PY) bench/backup_bench.py

# The full-store walk at 1M actors + 200k workers (flushes the dev cluster; seeding takes minutes).
bench-walk: cluster-start
	ATEDASH_CLUSTER_PORT=$(RUN_CLUSTER_PORT) $(PY) bench/walk_bench.py

clean: cluster-stop
	rm -rf $(VENV) .pytest_cache
