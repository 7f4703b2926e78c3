# The embedded site and the tests. Everything runs as root on this machine (see README).
.PHONY: up down purge status test lint install compose-build compose-up compose-down compose-purge

up:
	deploy/local/up

down:
	deploy/local/down

purge:
	deploy/local/down --purge

status:
	deploy/local/status

install:
	deploy/local/install

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy

# Lint, then every test against the native site (brought up if it is not), then the end-to-end suite and the
# compose checks against the compose site (deploy/docker/compose/test: built and brought up if it is not, and
# down again afterwards).
test: lint
	.venv/bin/pytest tests
	deploy/docker/compose/test

# The site as containers: podman, the base image and the images (deploy/docker).
compose-build:
	deploy/docker/setup
	deploy/docker/build

# The compose site (docker-compose.yml; podman-compose here): setup, build, secrets, up, healthy; .compose/env.
compose-up:
	deploy/docker/compose/up

# Containers and networks only; compose-purge also removes the volumes and .compose/secrets.
compose-down:
	deploy/docker/compose/down

compose-purge:
	deploy/docker/compose/down --purge
