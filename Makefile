# make test: install what is missing, then lint, type-check and run every test.
# make demo [DEMO_PORT=8081]: a throwaway school (slapd), nginx on 127.0.0.1:8080 and the sidecar.
# make bench: the sidecar against its baselines, in one run (bench/results/).
# make soak: mixed load while slapd, Redis, the state disk and the sidecar itself fail.
# make test-jitsi JITSI_PLUGINS=<folder> [JITSI_CONTRIB=<folder>]: the tokens against a
#   real Prosody with Jitsi's plugins (not part of make test).
# make deb: jitsi-auth-sidecar_<version>_<arch>.deb for this system (Debian 12, Ubuntu 24.04).

VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
DEBIAN_PACKAGES := gcc python3-dev python3-venv slapd ldap-utils nginx libldap-dev libsasl2-dev \
	chromium fonts-dejavu-core redis-server systemd wrk python3-ldap
# What make demo needs: slapd and nginx, and what bonsai is built with.
DEMO_DEBIAN_PACKAGES := gcc python3-dev python3-venv slapd ldap-utils nginx libldap-dev libsasl2-dev

.PHONY: test demo bench soak test-jitsi deb lint debian-packages jitsi-debian-packages \
	deb-debian-packages demo-debian-packages clean

# Two test processes, each taking whole files (module fixtures stay in one process):
# most tests wait for servers they started, so two halve the suite's time on two cores.
TEST_PROCESSES ?= 2

test: $(VENV)/.installed deb-debian-packages node_modules/.installed
	$(BIN)/ruff check sidecar demo tests testbed bench soak realjitsi
	$(BIN)/ruff format --check sidecar demo tests testbed bench soak realjitsi
	$(BIN)/mypy --strict
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

# The demo needs slapd, nginx and the daemon's own libraries: no browser, no test tools.
demo: $(VENV)/.demo-installed
	$(BIN)/python -m demo $(if $(DEMO_PORT),--port=$(DEMO_PORT))

# PEER=<path to nginx-ldap-auth-daemon.py>: that daemon as the peer (default: its stand-in);
# BENCH_ARGS: more, see python -m bench --help.
bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(if $(PEER),--peer="$(PEER)") $(BENCH_ARGS)

# SOAK_MINUTES: the mixed load's length (default 15); SOAK_ARGS: more, see python -m soak --help.
soak: $(VENV)/.installed
	$(BIN)/python -m soak $(if $(SOAK_MINUTES),--minutes=$(SOAK_MINUTES)) $(SOAK_ARGS)

# Debian's prosody and the Lua libraries Jitsi's plugins load (token/util.lib.lua,
# luajwtjitsi.lib.lua); lua-unbound is prosody's DNS resolver (a warning at each start without).
JITSI_DEBIAN_PACKAGES := prosody lua-cjson lua-basexx lua-luaossl lua-sec lua-inspect lua-unbound

test-jitsi: $(VENV)/.installed jitsi-debian-packages
	@test -n "$(JITSI_PLUGINS)" || { echo "usage: make test-jitsi JITSI_PLUGINS=<jitsi-meet's prosody-plugins> [JITSI_CONTRIB=<jitsi-contrib's prosody-plugins>]"; exit 2; }
	$(BIN)/python -m realjitsi --plugins "$(JITSI_PLUGINS)" $(if $(JITSI_CONTRIB),--contrib "$(JITSI_CONTRIB)")

# The package's build (packaging/debian/build.sh) and tests/test_deb.py: the
# compilers and headers bonsai is built with, dpkg-shlibdeps, lintian.
DEB_DEBIAN_PACKAGES := gcc python3-dev python3-venv libldap-dev libsasl2-dev dpkg-dev lintian git

deb: deb-debian-packages
	packaging/debian/build.sh $(if $(DEB_VERSION),--version "$(DEB_VERSION)")

# The bench extra (matplotlib) on top of the dev install.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

# axe-core, which the page tests inject into every page (package.json, the lock file).
# Debian's nodejs and npm only where no npm is there: a node of another origin
# brings its own npm, which Debian's package conflicts with.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory debian-packages DEBIAN_PACKAGES="nodejs npm"
	npm ci --no-audit --no-fund
	touch $@

# Debian packages through apt-get, only those that are missing.
debian-packages:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

jitsi-debian-packages:
	@$(MAKE) --no-print-directory debian-packages DEBIAN_PACKAGES="$(JITSI_DEBIAN_PACKAGES)"

deb-debian-packages:
	@$(MAKE) --no-print-directory debian-packages DEBIAN_PACKAGES="$(DEB_DEBIAN_PACKAGES)"

demo-debian-packages:
	@$(MAKE) --no-print-directory debian-packages DEBIAN_PACKAGES="$(DEMO_DEBIAN_PACKAGES)"

# The daemon and its runtime libraries only; make test adds the dev tools to the same .venv.
$(VENV)/.demo-installed: pyproject.toml | demo-debian-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed: pyproject.toml | debian-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache node_modules
