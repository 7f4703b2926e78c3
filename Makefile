# The embedded site and the tests. Everything runs as root on this machine (see README).
.PHONY: up down purge status test lint install compose-build

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

# Lint, then every test; the integration tests bring the site up themselves if it is not up.
test: lint
	.venv/bin/pytest tests

# The site as containers (issue 14, in progress): podman, the base image and the images (deploy/docker).
compose-build:
	deploy/docker/setup
	deploy/docker/build
