#!/usr/bin/env bash
# Regenerate the hashed dependency locks from pyproject.toml (pip-tools, in the dev venv). Run after changing
# a dependency, on Python 3.11 (what Debian 12's ward PCs run); commit requirements/*.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
compile=(.venv/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url
  --no-emit-find-links --all-build-deps "$@")  # scripts/lock.sh --upgrade: newest versions
"${compile[@]}" -o requirements/agent.lock pyproject.toml
"${compile[@]}" --extra center --extra postgres -o requirements/center.lock pyproject.toml
"${compile[@]}" --extra demo -o requirements/demo.lock pyproject.toml
"${compile[@]}" --extra dev --extra demo --extra center --extra postgres -o requirements/dev.lock pyproject.toml
echo "locks: $(grep -c '==' requirements/agent.lock) agent, $(grep -c '==' requirements/center.lock) center, $(grep -c '==' requirements/dev.lock) dev packages"
