# make test: install what is missing, then lint, type-check and run every test.
# make demo: a throwaway school (slapd), nginx on 127.0.0.1:8080 and the sidecar.

VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
DEBIAN_PACKAGES := gcc python3-dev python3-venv slapd ldap-utils nginx libldap-dev libsasl2-dev \
	chromium fonts-dejavu-core redis-server systemd

.PHONY: test demo lint debian-packages clean

test: $(VENV)/.installed
	$(BIN)/ruff check sidecar demo tests
	$(BIN)/ruff format --check sidecar demo tests
	$(BIN)/mypy --strict
	$(BIN)/pytest

demo: $(VENV)/.installed
	$(BIN)/python -m demo

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

$(VENV)/.installed: pyproject.toml | debian-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache
