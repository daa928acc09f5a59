# Two commands do all the set-up: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup host test-host venv images demo test lint typecheck unit bench soak schema clean portability

setup: host venv images

# Run as yourself: the script uses sudo only for packages, daemons, /dev/kvm and groups.
host:
	@bash scripts/setup-host.sh

# What only the suite needs on top: openssh-server (the remote-URI test), chromium (the class site),
# vagrant and vagrant-libvirt (`vagrant validate` of the students' Vagrantfile).
test-host:
	@VMLAB_SETUP_TEST=1 bash scripts/setup-host.sh

venv: $(STAMP)

# The `vm` extra (libvirt-python, docker) is what the guest and container labs import.
$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "[setup] error: vmlab needs Python >= 3.11 (found $$($(PY) -V 2>&1)); set PY=python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "[setup] installing vmlab into $(VENV)" >&2
	@$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/pip install -q -e '.[dev,vm]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -c 'import vmlab, libvirt, docker' || { echo "[setup] error: the venv install failed" >&2; exit 1; }
	@touch $(STAMP)

images: host venv
	@$(BIN)/vmlab image build tiny

demo: setup
	@$(BIN)/vmlab doctor || true
	@$(BIN)/vmlab compare

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: venv
	$(BIN)/mypy

# The suite also builds and boots the micro image (a minimal kernel compiled once, ~3 min on 2 cores,
# then cached): its tests would otherwise skip on every fresh CI machine.
test: setup test-host lint typecheck
	VMLAB_BUILD_MICRO=1 $(BIN)/pytest -q -p no:cacheprovider --durations=15

# Boot benchmarks: medians of cold starts per image and lever, appended with the host to runs/perf/.
bench: setup
	VMLAB_PERF=1 $(BIN)/pytest -q -p no:cacheprovider tests/perf

# A loaded host: compare --runs 20 beside three lab runs, nothing left, every report valid (minutes).
soak: setup
	VMLAB_SOAK=1 $(BIN)/pytest -q -p no:cacheprovider tests/integration/soak

# The README's commands on Debian 13 in a root of its own (mmdebstrap; own PID and mount namespace;
# daemons inside): make demo, the unit tests, an integration subset. Long (apt, venv, image build), so
# not part of `make test`. Needs root and mmdebstrap; leaves nothing behind. See scripts/portability.sh.
portability:
	@if [ "$$(id -u)" -eq 0 ]; then bash scripts/portability.sh; else sudo bash scripts/portability.sh; fi

unit: venv
	$(BIN)/pytest -q tests/unit

schema: venv
	$(BIN)/vmlab report schema > schemas/report.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
