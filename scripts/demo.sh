#!/usr/bin/env bash
# Set up camwatch on a fresh Debian machine and run the demo (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
exec .venv/bin/camwatch demo "$@"
