#!/usr/bin/env bash
# Install camwatch and exactly its locked dependencies into a virtualenv.
#   deploy/install-python.sh VENV LOCK [WHEELS]
# LOCK is requirements/agent.lock or requirements/center.lock: every package pinned with its hashes, so
# pip installs nothing else and refuses a file whose hash differs. With WHEELS (a directory made by
# deploy/make-bundle.sh), nothing is fetched: the ward PC needs no network at all.
set -euo pipefail
venv="$1"; lock="$2"; wheels="${3:-}"
src="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$lock" ] || { echo "install-python: no lock file $lock" >&2; exit 2; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if [ -n "$wheels" ]; then
  [ -d "$wheels" ] || { echo "install-python: no wheel directory $wheels" >&2; exit 2; }
  "${pip[@]}" install --no-index --find-links "$wheels" --require-hashes -r "$lock"
  shopt -s nullglob
  own=("$wheels"/camwatch-*.whl)
  [ "${#own[@]}" -eq 1 ] || { echo "install-python: expected one camwatch wheel in $wheels" >&2; exit 2; }
  "${pip[@]}" install --no-index --no-deps --force-reinstall "${own[0]}"
else
  "${pip[@]}" install --require-hashes -r "$lock"
  # camwatch itself from this checkout; its build backend (setuptools) is in the lock
  "${pip[@]}" install --no-deps --no-build-isolation --force-reinstall "$src"
fi
"$venv/bin/camwatch" --help >/dev/null
echo "install-python: camwatch and $(grep -c '^[A-Za-z0-9].*==' "$lock") locked packages in $venv"
