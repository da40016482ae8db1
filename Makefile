# dataproduct-operator: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DPO := $(BIN)/dpo
PYTEST_ARGS ?=
CLUSTER_DIR ?= .cluster
N ?= 50
GROW_TO ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Targets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every package comes from requirements/dev.lock, pinned with its hashes (pip refuses anything
# else, wheels only); the project goes in after it without resolving dependencies of its own.
$(VENV)/.locked: requirements/dev.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --only-binary :all: -r requirements/dev.lock
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.locked
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -m pip check || { echo "pyproject.toml needs packages requirements/*.lock lacks: run make lock"; exit 1; }
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv from requirements/dev.lock (hashes checked), then the package

# datacontract-cli, for the tests that check the ODCS export with a tool this project did not
# write: its many dependencies get a virtualenv of their own, so they never meet ours.
DATACONTRACT_VENV ?= .venv-datacontract

$(DATACONTRACT_VENV)/.locked: requirements/datacontract.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(DATACONTRACT_VENV)
	$(DATACONTRACT_VENV)/bin/python -m pip install --quiet --require-hashes --only-binary :all: -r requirements/datacontract.lock
	@touch $@

.PHONY: datacontract
datacontract: $(DATACONTRACT_VENV)/.locked ## Create .venv-datacontract (DATACONTRACT_VENV) with datacontract-cli from requirements/datacontract.lock (hashes checked), for the tests

# pip-compile resolves for the interpreter it runs on: the venv's Python 3.11 on Linux.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)

.PHONY: lock
lock: $(VENV)/.locked ## Regenerate requirements/{runtime,runner,dev,build}.lock (pins + hashes) from pyproject.toml, and requirements/datacontract.lock from its .in (PyPI; UPGRADE=1 takes the newest allowed)
	$(PIP_COMPILE) --output-file requirements/runtime.lock pyproject.toml
	$(PIP_COMPILE) --extra runner --constraint requirements/runtime.lock \
		--output-file requirements/runner.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --extra runner --constraint requirements/runner.lock \
		--output-file requirements/dev.lock pyproject.toml
	$(PIP_COMPILE) --only-build-deps --build-deps-for wheel --constraint requirements/dev.lock \
		--output-file requirements/build.lock pyproject.toml
	$(PIP_COMPILE) --output-file requirements/datacontract.lock requirements/datacontract.in

SBOM ?= dist/sbom.cdx.json

# The warning silenced says the graph of who needs whom is missing: a requirements file has none.
.PHONY: sbom
sbom: venv ## Write the CycloneDX SBOM of requirements/runtime.lock (what the image installs: versions, hashes) to $(SBOM)
	@mkdir -p $(dir $(SBOM))
	PYTHONWARNINGS="ignore:The Component this BOM is describing" $(BIN)/cyclonedx-py requirements \
		--pyproject pyproject.toml --output-reproducible --output-format JSON \
		--output-file $(SBOM) requirements/runtime.lock
	@echo "Wrote $(SBOM)"

.PHONY: tools
tools: venv postgres node-packages prometheus ## Build the control-plane binaries (etcd, kube-*, kwok, kubelet, kubectl, helm) if missing; install PostgreSQL, Prometheus and the real node's runtime if missing
	$(DPO) tools build

# The real node's container runtime: containerd, runc, the CNI plugins, iproute2 (its bridge is
# made and deleted with `ip`) and nftables (the rules that keep the bridge's address to its pods). Without root nothing is installed: `dpo cluster up` then says
# why the real node cannot run and keeps kwok's node only.
.PHONY: node-packages
node-packages: ## Install Debian's containerd, runc, containernetworking-plugins, iproute2 and nftables (the real node's runtime), if missing (apt-get, as root)
	@{ command -v containerd && command -v runc && command -v ip && command -v nft && test -x /usr/lib/cni/bridge; } >/dev/null 2>&1 || { \
		test "$$(id -u)" = 0 || { echo "The real node's runtime is missing (apt-get install containerd runc containernetworking-plugins iproute2 nftables, as root); dpo cluster up runs kwok's node only"; exit 0; }; \
		echo "Installing containerd, runc, containernetworking-plugins, iproute2 and nftables (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd runc containernetworking-plugins iproute2 nftables; }

# Debian's postgresql package would create and start a system cluster ("main", port 5432) on
# install; the local cluster runs its own server, so postgresql-common is told not to, first.
.PHONY: postgres
postgres: ## Install Debian's PostgreSQL server (for `dpo cluster up`), if missing (apt-get, as root)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || test -n "$$DPO_POSTGRES_BIN_DIR" || { \
		test "$$(id -u)" = 0 || { echo "PostgreSQL is missing: install Debian's postgresql package (apt-get install postgresql)"; exit 1; }; \
		echo "Installing PostgreSQL (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-common && \
		sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# Debian's prometheus: promtool proves the generated alert rules and the dashboard's queries in
# the unit tests, and the server is the local cluster's Prometheus. Without recommends (no node
# exporter); on a machine where the package's own service starts (systemd), it is disabled again:
# the local cluster runs its own server, on loopback.
.PHONY: prometheus
prometheus: ## Install Debian's prometheus (promtool, and the local cluster's Prometheus), if missing (apt-get, as root)
	@{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || { \
		test "$$(id -u)" = 0 || { echo "Prometheus is missing: install Debian's prometheus package (apt-get install --no-install-recommends prometheus)"; exit 1; }; \
		echo "Installing prometheus (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus && \
		{ ! systemctl is-system-running >/dev/null 2>&1 || systemctl disable --now prometheus; }; }

.PHONY: browser
browser: ## Install Debian's chromium for the catalog's browser tests, if missing (apt-get, as root)
	@command -v chromium >/dev/null || { \
		test "$$(id -u)" = 0 || { echo "chromium is missing: install Debian's chromium package (apt-get install chromium)"; exit 1; }; \
		echo "Installing chromium (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

.PHONY: image-python
image-python: ## Install Debian's python3.11 and python3.11-venv (the image's Python, for the image recipe test), if missing (apt-get, as root)
	@test -x /usr/bin/python3.11 && /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || { \
		test "$$(id -u)" = 0 || { echo "Debian's python3.11-venv is missing: apt-get install python3.11 python3.11-venv"; exit 1; }; \
		echo "Installing python3.11 and python3.11-venv (apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11 python3.11-venv; }

# Debian packages the image builds use: gcc and libc6-dev (the static pause program),
# busybox-static (the toolbox), debootstrap (the Debian base of the runner and operator images).
IMAGE_BUILD_PACKAGES := gcc libc6-dev busybox-static debootstrap

.PHONY: images
images: venv ## Build the pause, toolbox, runner and operator images (no registry, no Docker) into the cache, as archives for the local node; installs what the builds need if missing (apt-get, as root)
	@missing="$$(for p in $(IMAGE_BUILD_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done)"; \
	test -z "$$missing" || { \
		test "$$(id -u)" = 0 || { echo "Missing Debian packages for the image builds: apt-get install" $$missing; exit 1; }; \
		echo "Installing" $$missing "(apt-get)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; }
	$(DPO) images build

.PHONY: generate
generate: venv ## Regenerate the generated files (CRDs, the chart's generated files, docs/api/) from the package
	$(DPO) generate

.PHONY: verify
verify: venv ## Fail if a generated file differs from what `make generate` writes, or the locks from pyproject.toml
	$(DPO) generate --check
	$(BIN)/python -m tests.locks

.PHONY: lint
lint: venv ## ruff (lint + format check), mypy --strict, import-linter layer contracts
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict benchmarks
	$(BIN)/lint-imports

.PHONY: format
format: venv ## Format and auto-fix the code
	$(BIN)/ruff format operator tests benchmarks
	$(BIN)/ruff check --fix operator tests benchmarks

.PHONY: unit
unit: venv datacontract prometheus ## Unit tests: no cluster, no network (promtool proves the alert rules)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: integration
integration: venv tools images browser datacontract ## Integration tests against a local control plane (started by the tests)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

.PHONY: security
security: venv tools images browser image-python ## Security tier: least privilege by impersonation, refusals at apply, tenant isolation, the catalog under abuse
	$(BIN)/pytest tests/security $(PYTEST_ARGS)

.PHONY: faults
faults: venv tools images ## Fault suite on its own control plane: API server paused, etcd restarted, SIGKILLs, throttling, blackholed watches, bad objects, two operators
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

.PHONY: test
test: venv tools images browser image-python datacontract lint verify ## Everything CI runs: lint, verify, unit, integration and security tests, and the fault suite beside them (its output after theirs)
	$(BIN)/python -m tests.tiers --live "tests/unit tests/integration tests/security" --beside tests/faults -- $(PYTEST_ARGS)

.PHONY: dev
dev: venv tools images ## Run the operator with examples/ on a local control plane in $(CLUSTER_DIR) (Ctrl-C stops)
	$(DPO) dev --dir $(CLUSTER_DIR) --examples examples

.PHONY: bench
bench: venv tools ## Mesh-scale benchmark on its own control plane: N products (default 50); GROW_TO=M also measures memory growth to M
	$(BIN)/python -m benchmarks.mesh --n $(N) $(if $(GROW_TO),--grow-to $(GROW_TO)) \
		--command "make bench N=$(N)$(if $(GROW_TO), GROW_TO=$(GROW_TO))"

.PHONY: bench-stores
bench-stores: venv tools ## Store benchmark on its own control plane and PostgreSQL: N products (default 50) with 2 PostgreSQL ports and 3 readers: T_op/T_raw, statements per product, peak connections, idle drift statements, create->Ready p50
	$(BIN)/python -m benchmarks.stores --n $(N) --command "make bench-stores N=$(N)"

.PHONY: bench-runs
bench-runs: venv tools images ## Runs benchmark on its own control plane with the real node: N products (default 50) with an on-demand sql pipeline over a seeded source: runs per minute, request->result p50/p95 at once and p50 one at a time, where a run's time goes, operator API writes per run
	$(BIN)/python -m benchmarks.runs --n $(N) --command "make bench-runs N=$(N)"

ROWS ?= 1000000
REPEAT ?= 5

.PHONY: bench-runner
bench-runner: venv tools ## The SQL runner against the same INSERT ... SELECT in PostgreSQL, on a control plane of its own: ROWS rows (default 1000000), REPEAT runs of each (default 5): T_runner/T_direct, rows/s, the runner's steps
	$(BIN)/python -m benchmarks.runner --rows $(ROWS) --repeat $(REPEAT) \
		--command "make bench-runner ROWS=$(ROWS)$(if $(filter-out 5,$(REPEAT)), REPEAT=$(REPEAT))"

.PHONY: bench-catalog
bench-catalog: venv tools ## The catalog at mesh scale on its own control plane: N products (default 50): sync time, RSS, page latencies, freshness, API calls per view; GROW_TO=M also measures memory growth to M
	$(BIN)/python -m benchmarks.catalog --n $(N) $(if $(GROW_TO),--grow-to $(GROW_TO)) \
		--command "make bench-catalog N=$(N)$(if $(GROW_TO), GROW_TO=$(GROW_TO))"

.PHONY: cluster-up
cluster-up: venv tools ## Start a local control plane in $(CLUSTER_DIR)
	$(DPO) cluster up --dir $(CLUSTER_DIR)

.PHONY: cluster-down
cluster-down: venv ## Stop the local control plane in $(CLUSTER_DIR)
	$(DPO) cluster down --dir $(CLUSTER_DIR)

.PHONY: clean
clean: ## Remove the virtualenv and caches in the repository (not the tool cache)
	rm -rf $(VENV) $(DATACONTRACT_VENV) .mypy_cache .ruff_cache .pytest_cache
