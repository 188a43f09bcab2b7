# Attest: `make demo` serves a seeded portal on http://127.0.0.1:8000; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEMO_ENV := ATTEST_DEMO=1 DJANGO_SETTINGS_MODULE=portal.settings
# One pytest process per core: each shares the suite's PostgreSQL (its own test database) and starts its own Redis,
# workers and Chromium. Modules stay whole on one process (--dist loadscope) so their fixtures are built once.
PYTEST_WORKERS ?= 2
# Debian packages the suite and the reports need: real PostgreSQL, Redis and Chromium, Pango for WeasyPrint,
# poppler for looking at rendered pages.
APT_PACKAGES := postgresql redis-server chromium fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 poppler-utils

.PHONY: demo test install system-deps lint format check-deploy bench clean-demo help

help:
	@echo "make demo   - install, migrate, seed a demo organisation and serve on http://127.0.0.1:8000"
	@echo "make test   - install what is missing and run the whole test suite"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmarks in benchmarks/"

install: $(STAMP)

# torch goes first and alone, pinned exactly: a CPU build of 2.13.0 is on this kind of machine, a looser pin pulls GBs.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

system-deps:
	@missing=""; \
	for bin in /usr/lib/postgresql/*/bin/initdb; do [ -x "$$bin" ] && found_pg=1; done; \
	[ -n "$$found_pg" ] || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	ldconfig -p 2>/dev/null | grep -q libpango-1.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	fc-list 2>/dev/null | grep -qi dejavu || missing="$$missing fonts-dejavu-core"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "Missing system packages:$$missing (run as root with apt, or install them; tests that need them fail under CI)"; \
	fi

# Static gates first (lint, formatting, architecture contracts from pyproject.toml, models without a migration), then
# the suite.
test: system-deps install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	ATTEST_TESTING=1 DATABASE_URL=sqlite://:memory: $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check-deploy: install
	SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ATTEST_MASTER_KEY=$$($(PY) -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())') \
	ALLOWED_HOSTS=attest.example.org $(PY) manage.py check --deploy --fail-level WARNING

bench: install
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Ctrl-C stops the web server and the worker together.
demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C stops the portal and its worker)"
	@trap 'kill 0' INT TERM EXIT; \
	$(DEMO_ENV) $(VENV)/bin/celery -A portal worker -B -s var/celerybeat-schedule -Q default,gpu --concurrency 2 --loglevel INFO & \
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:8000 --noreload; \
	wait

clean-demo:
	rm -rf var/
