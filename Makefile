# pinned.release: everything a newcomer or CI needs, from a fresh Debian
# machine with only Python. Every target is safe to run again.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS ?= 1

step = @printf '\n\033[1m== %s\033[0m\n' $(1)

.PHONY: help venv deps lab lab-down lab-status demo demo-adopt bench docs test test-unit lint sanity unit integration molecule constraints clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Python venv with the pinned tooling (.venv)
$(VENV)/.installed: requirements.txt constraints.txt
	$(call step,"venv: $(VENV) with requirements.txt")
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) 2>/dev/null \
	  || { rm -rf $(VENV); lab/lab.sh deps-venv && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt \
	  2> >(grep -v "^WARNING: Location .* is ignored" >&2)
	@touch $@

deps: ## Debian packages the tests drive (skopeo, openssl, htpasswd, ...)
	@lab/lab.sh deps

# Lab cells the integration tests run side by side on (lab/lab.sh up --cells): see docs/development.md for the measure.
LAB_CELLS ?= 2
lab: venv ## bring the embedded lab up (engine, registry, images, LAB_CELLS cells of 3 nodes)
	$(call step,"lab: up ($(LAB_CELLS) cells)")
	@lab/lab.sh up --cells $(LAB_CELLS)

lab-down: ## stop the lab (keeps caches; lab/lab.sh down --purge drops them)
	@lab/lab.sh down

lab-status: ## show engine, registry and nodes
	@lab/lab.sh status

demo: lab ## the main job on the lab: a whole release cycle
	$(call step,"demo: a whole release cycle on the lab")
	@$(BIN)/python lab/demo.py

demo-adopt: lab ## a fleet started by hand adopted, deployed, upgraded and rolled back on the lab
	$(call step,"demo: adopting a fleet started by hand")
	@$(BIN)/python lab/demo_adopt.py

bench: lab deps ## benchmarks on the lab, each next to its peer (bench/results.{json,md}; BENCH_RUNS=3; BENCH_ONLY=scale: the cost curve)
	$(call step,"bench: what an operator feels and its peers")
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@$(BIN)/python bench/bench.py

docs: venv ## regenerate the settings' generated parts (_settings.py), docs/inventory-reference.md and docs/recovery.md's step table
	@$(BIN)/python tools/settings_table.py
	@$(BIN)/python tools/inventory_reference.py
	@$(BIN)/python tools/recovery_table.py

lint: venv ## quality gates: ruff, yamllint, ansible-lint (production profile)
	$(call step,"gate: ruff check")
	@ruff check plugins tests lab bench tools molecule
	$(call step,"gate: ruff format --check")
	@ruff format --check plugins tests lab bench tools molecule
	$(call step,"gate: yamllint")
	@yamllint --strict roles playbooks profiles inventories meta galaxy.yml changelogs execution-environment.yml requirements.yml molecule .config bench plugins/filter
	$(call step,"gate: ansible-lint (production profile)")
	@ansible-lint --nocolor -q

# ansible-test wants the collection under ansible_collections/<ns>/<name>:
# copy the tracked (and new, not ignored) files there, as a git repository of
# its own (inside ours, ansible-test would list files with our git, which
# ignores .build/). Its pip bootstrap script
# comes from a host we cannot reach, so it gets our stand-in, which uses the
# venv's pip. ANSIBLE_CONFIG is unset so the copy is tested as shipped.
SANITY_ROOT := $(CURDIR)/.build/sanity/ansible_collections/pinned/release
sanity: venv deps ## ansible-test sanity (every test, no ignore file) on a copy under ansible_collections/
	$(call step,"gate: ansible-test sanity")
	@rm -rf $(CURDIR)/.build/sanity && mkdir -p $(SANITY_ROOT)
	@git ls-files -z --cached --others --exclude-standard | grep -zv '^\.collections/' \
	  | xargs -0 cp --parents -t $(SANITY_ROOT)
	@cd $(SANITY_ROOT) && git init -q && git add -A
	@install -D -m 0644 tests/sanity/get_pip.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	@cd $(SANITY_ROOT) && env -u ANSIBLE_CONFIG ansible-test sanity --python 3.11 --venv --requirements --color no \
	  2> >(grep -v "^WARNING: Location .* is ignored" >&2) \
	  | grep -v -e '^Looking in' -e '^Processing ' -e '^Collecting ' -e '^Requirement ' -e '^  ' -e 'Downloading' \
	    -e '^Installing collected' -e '^Successfully installed' -e '^WARNING: Location .* is ignored'

# Unit tests are spread over the CPUs; lab tests over the cells (one worker per cell, a module's tests on one worker,
# the real app's on one: tests/conftest.py schedules them), then the few that change what every cell shares, alone.
PYTEST := pytest -p no:cacheprovider
UNIT := $(PYTEST) -n 2 --junitxml=.build/junit-unit.xml tests/unit
INTEGRATION := $(PYTEST) -n $(LAB_CELLS) -m "not exclusive_lab" --junitxml=.build/junit-integration.xml tests/integration
EXCLUSIVE := $(PYTEST) -m exclusive_lab --junitxml=.build/junit-exclusive.xml tests/integration
unit: venv deps ## unit tests (no lab needed; headless Chromium draws the fleet page)
	$(call step,"tests: unit")
	@mkdir -p .build && $(UNIT)

integration: lab deps ## integration tests against the lab
	$(call step,"tests: integration on $(LAB_CELLS) lab cells")
	@mkdir -p .build && $(INTEGRATION) && $(EXCLUSIVE)

# The lab nodes are not created by molecule, so nothing resets its per-scenario
# state: a scenario once run from this path stays "prepared" and would skip
# prepare (the lab reset) next time. `molecule reset` first makes prepare run.
# Molecule probes for an optional "default" scenario and logs its absence as
# CRITICAL; there is none on purpose (each scenario is self-contained).
# On failure the failing tasks are printed last: molecule's recap would push them
# out of the last lines a CI log shows.
MOLECULE_LOG := .build/molecule/ansible.log
MOLECULE_NOISE := -e "molecule/default/molecule.yml' glob failed" -e "podman could not be found"
molecule: lab ## molecule scenarios tenant, release_cycle, rollback on the lab (testinfra verifiers)
	$(call step,"tests: molecule scenarios (tenant release_cycle rollback)")
	@mkdir -p $(dir $(MOLECULE_LOG)) && rm -f $(MOLECULE_LOG)
	@molecule reset --all --no-report > $(dir $(MOLECULE_LOG))reset.log 2>&1 || { cat $(dir $(MOLECULE_LOG))reset.log; exit 1; }
	@molecule test --all 2> >(grep -v $(MOLECULE_NOISE) >&2) || { \
	  status=$$?; echo "== molecule failed; the last failed tasks ($(MOLECULE_LOG)):"; \
	  $(BIN)/python tools/ansible_failures.py $(MOLECULE_LOG); exit $$status; }

LAYER := $(BIN)/python tools/test_layers.py run
test: venv deps lab ## everything: gates, unit, integration on the lab cells, molecule; each layer's time, the slowest tests
	@mkdir -p .build && rm -f .build/layer-times.tsv .build/junit-*.xml
	@$(LAYER) gates -- $(MAKE) --no-print-directory lint sanity
	$(call step,"tests: unit")
	@$(LAYER) unit -- $(UNIT)
	$(call step,"tests: integration on $(LAB_CELLS) lab cells")
	@$(LAYER) integration -- $(INTEGRATION)
	$(call step,"tests: integration changing what every cell shares (alone)")
	@$(LAYER) "integration, alone" -- $(EXCLUSIVE)
	@$(LAYER) molecule -- $(MAKE) --no-print-directory molecule
	@$(BIN)/python tools/test_layers.py summary

test-unit: venv deps ## the inner loop: gates and unit tests, no lab (a few minutes)
	@mkdir -p .build && rm -f .build/layer-times.tsv .build/junit-*.xml
	@$(LAYER) gates -- $(MAKE) --no-print-directory lint sanity
	$(call step,"tests: unit")
	@$(LAYER) unit -- $(UNIT)
	@$(BIN)/python tools/test_layers.py summary

constraints: ## re-resolve constraints.txt from requirements.txt
	@rm -rf /tmp/pinned-constraints && $(PYTHON) -m venv /tmp/pinned-constraints
	@/tmp/pinned-constraints/bin/pip install -q -r requirements.txt
	@{ echo '# Generated by `pip freeze` from requirements.txt; `make constraints` refreshes it.'; \
	  /tmp/pinned-constraints/bin/pip freeze; } > constraints.txt

clean: ## remove the venv and caches (not the lab: make lab-down)
	rm -rf $(VENV) .pytest_cache .ruff_cache
