# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# `make run PORT=9000` (or CHARTER_PORT=9000 make run) serves on another port.
run: $(VENV)/.installed
	$(BIN)/charter serve $(if $(PORT),--port $(PORT))

# The portal's browser tests drive Debian's Chromium (Playwright cannot download browsers here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c \
	  'apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }'

# The alerting-rules tests run `promtool check rules` and `promtool test rules`: Debian ships promtool
# in `prometheus` (no separate package). Only the tool is wanted: no recommends, and the server the
# package would start under systemd is stopped and disabled again.
PROMTOOL ?= /usr/bin/promtool

$(PROMTOOL):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c \
	  'apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }'
	-$(SUDO) sh -c 'command -v systemctl >/dev/null && systemctl disable --now prometheus >/dev/null 2>&1'

test: $(VENV)/.installed-dev | $(CHROMIUM) $(PROMTOOL)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) .pytest_cache charter.db*
