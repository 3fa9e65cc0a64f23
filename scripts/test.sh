#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then lint,
# type-check and run the whole test suite (real Mosquitto, real RTSP server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
.venv/bin/ruff check agent center common contract tests bench scripts
.venv/bin/ruff format --check agent center common contract tests bench scripts
.venv/bin/mypy  # the packages, strict
.venv/bin/mypy tests bench  # the tests and benches, as strict (tests/ is on mypy_path: `support`, `conftest`)
.venv/bin/python -m contract.generate --check  # the committed schemas and AsyncAPI document are the models'
.venv/bin/lint-imports --no-cache  # the layers pyproject.toml states ([tool.importlinter])
# Two workers, each taking a whole file at a time (module fixtures stay shared): most tests wait on real
# time (cameras playing, debounces), so two at once halve the wall time on a 2-core machine.
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
