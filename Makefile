# omr.deploy: one entry point for set-up, tests and the demo lab.
# Every target does its own set-up, so `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
PY          := $(BIN)/python
export CONTAINERS_CONF    := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG     := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export PATH               := $(CURDIR)/$(BIN):$(PATH)
export PY_COLORS          := 0
export ANSIBLE_FORCE_COLOR := 0

# prometheus: for promtool, which checks and unit-tests prometheus/omr-deploy.rules.yml in the unit stage.
# chromium: the unit stage opens playbooks/diagnose.yml's HTML report in it, headless.
APT_PACKAGES := podman runc debootstrap iproute2 nftables iputils-ping uidmap slirp4netns containernetworking-plugins \
                shellcheck busybox jq prometheus curl mptcpize chromium
IMAGES       := debian12 debian13
SCENARIOS    := vps vps_reject lab
PROFILE      ?= wifi
# The lab's router: linux (the Debian router) or omr (the OMR stand-in, no Python, UCI over SSH).
# PROFILE=omr is the wifi profile with the OMR stand-in.
ROUTER       ?= linux
ifeq ($(PROFILE),omr)
override PROFILE := wifi
ROUTER := omr
endif
# The lab's hosts with the profile as group_vars/all.yml, as Molecule sees them (lab/inventory.sh).
LAB_INVENTORY := .cache/lab-inventory/$(PROFILE)-$(ROUTER)
LAB          := -i $(LAB_INVENTORY)

BENCH_ARGS   ?=

.PHONY: bench help setup apt venv collection images lint yamllint ansible-lint sanity unit integration \
        molecule test fast demo demo-down clean lab-inventory docs audit diagnose

help:
	@echo "make demo       bring up the lab (PROFILE=wifi|even|mixed|cellular), converge it with site.yml, verify, speed test,"
	@echo "                and a LAN client's download from the internet host, bonded through the proxy;"
	@echo "                ROUTER=omr (or PROFILE=omr) puts the OMR stand-in in the router's place"
	@echo "make demo-down  remove the lab containers"
	@echo "make diagnose   after make demo: OMR's five troubleshooting steps against the lab's router and VPS;"
	@echo "                .cache/diagnose/diagnose-<router>.html and .json (docs/diagnose.md)"
	@echo "make test       everything CI runs: lint, sanity, unit, integration, molecule"
	@echo "make fast       the quick tier: lint and unit tests (a couple of minutes)"
	@echo "make bench      efficiency (defaults vs tuned), failover, converge times; writes bench/results/"
	@echo "make setup      Debian packages, $(VENV), collection link, lab images (idempotent)"
	@echo "make docs       regenerate the role references roles/*/README.md from their argument specs"
	@echo "make venv collection   only the Python tool chain and the collection link (for real hosts, no lab)"
	@echo "make audit      audit running hosts: INVENTORY=inventory GROUP=omr_vps,omr_router JOBS=4 OUT=.cache/audit"
	@echo "                TIMEOUT=10 WAIVERS=file; the script's exit code: 0 compliant, 1 non-compliant, 2 unreachable,"
	@echo "                4 usage error (make itself exits 2 on any of 1, 2, 4: it says \"Error N\")"

setup: apt venv collection images

# Install only what is missing; apt-get update once, and only then.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

# The repository root is the collection root; link it where Ansible looks for omr.deploy.
collection:
	@mkdir -p .collections/ansible_collections/omr
	@ln -sfn ../../.. .collections/ansible_collections/omr/deploy

images: apt
	lab/images/build.sh bookworm localhost/omr-lab/debian:12
	lab/images/build.sh trixie localhost/omr-lab/debian:13
	lab/images/build.sh bookworm localhost/omr-lab/omr:12 omr

# ---- fast tier -------------------------------------------------------------
yamllint: venv
	$(BIN)/yamllint -s .

ansible-lint: venv collection
	$(BIN)/ansible-lint --offline

sanity: venv collection
	tests/sanity/run.sh

lint: yamllint ansible-lint sanity

unit: apt venv collection
	$(BIN)/pytest -q tests/unit

fast: yamllint ansible-lint unit

# The role references, roles/<role>/README.md, from meta/argument_specs.yml, and CHANGELOG.md from
# changelogs/ (the unit tests fail when either is stale).
docs: venv
	$(PY) docs/role_readme.py
	$(BIN)/antsibull-changelog lint && $(BIN)/antsibull-changelog generate

# ---- slow tier: real namespaces and containers ------------------------------
integration: setup
	$(BIN)/pytest -q tests/integration

molecule: setup
	@for s in $(SCENARIOS); do \
	  echo "=== molecule test -s $$s"; \
	  $(BIN)/molecule test -s $$s || exit 1; \
	done

# Every stage, then the table of their durations (tests/stages.sh).
test: setup
	@tests/stages.sh "yamllint=$(BIN)/yamllint -s ." "ansible-lint=$(BIN)/ansible-lint --offline" \
	  "sanity=tests/sanity/run.sh" "unit=$(BIN)/pytest -q tests/unit" "integration=$(BIN)/pytest -q tests/integration" \
	  $(foreach s,$(SCENARIOS),"molecule $(s)=$(BIN)/molecule test -s $(s)")

# ---- benchmark: figures, not assertions -------------------------------------------
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# ---- fleet audit: tests/audit against running hosts (docs/fleet.md) -------------------
# One pytest process per host, JOBS at a time; OUT/<host>.xml (JUnit), OUT/summary.json and .txt.
# The lab: INVENTORY=$(LAB_INVENTORY) after `make demo` (or `make lab-inventory`).
INVENTORY    ?= inventory
GROUP        ?= omr_vps,omr_router
JOBS         ?= 4
OUT          ?= .cache/audit
TIMEOUT      ?= 10
WAIVERS      ?=

audit: venv collection
	$(PY) tests/audit/run.py -i "$(INVENTORY)" -g "$(GROUP)" -j "$(JOBS)" -o "$(OUT)" -t "$(TIMEOUT)"$(if $(WAIVERS), --waivers "$(WAIVERS)")

# ---- the demo lab -------------------------------------------------------------
lab-inventory:
	@lab/inventory.sh $(PROFILE) $(LAB_INVENTORY) $(ROUTER)

# The OMR stand-in has no VPN (OMR's glorytun is not packaged): its LAN's UDP burst is skipped.
demo: setup lab-inventory
	$(BIN)/ansible-playbook $(LAB) lab/up.yml
	$(BIN)/ansible-playbook $(LAB) site.yml
	$(BIN)/ansible-playbook $(LAB) playbooks/speedtest.yml lab/lan.yml $(if $(filter omr,$(ROUTER)),,lab/udp.yml)

# The lab after `make demo` (same PROFILE and ROUTER): playbooks/diagnose.yml, its report in .cache/diagnose/.
diagnose: venv collection lab-inventory
	$(BIN)/ansible-playbook $(LAB) playbooks/diagnose.yml

demo-down: venv collection lab-inventory
	$(BIN)/ansible-playbook $(LAB) lab/down.yml

clean: demo-down
	rm -rf .build .cache tests/output
