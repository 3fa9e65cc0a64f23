#!/usr/bin/env bash
# Set up camwatch on a fresh Debian 12 machine: system packages (idempotent)
# and a virtualenv in .venv with the project installed.
#   scripts/setup.sh [EXTRA]     EXTRA: pip extra to install, e.g. dev or demo
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-dev}"

# Mosquitto (the real broker for tests), GStreamer's RTSP server run by
# Debian's python3-gi (simulated cameras for tests, benchmarks and the demo),
# PostgreSQL's server (the center's store is tested on it too; tests start
# their own cluster on loopback, the system one is not used), Chromium (the
# center's pages are tested in a real browser, driven by Playwright, whose
# Node.js driver needs libatomic1), OpenCV's documentation (its sample videos are
# real surveillance footage: tests build clips from them; nothing is downloaded
# or committed), systemd (systemd-analyze scores the shipped units), docker-compose (its parser
# validates the shipped compose file; no container runtime is needed). scripts/fresh-check.sh proves
# this list complete on a freshly made minimal Debian 12.
APT_PACKAGES=(
  mosquitto openssl systemd docker-compose
  python3 python3-venv python3-gi
  gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-x
  postgresql
  chromium libatomic1
  opencv-doc
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "camwatch needs Python >= 3.11")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Exactly the locked versions, hash-checked (requirements/*.lock, made by scripts/lock.sh); then camwatch
# itself, editable, built by the locked setuptools.
lock="requirements/$extra.lock"
[ -f "$lock" ] || { echo "setup: no lock for extra '$extra' (requirements/{dev,demo,center,agent}.lock)" >&2; exit 2; }
.venv/bin/python -m pip install -q --require-hashes -r "$lock"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
if [ "$extra" = dev ]; then
  # The AsyncAPI 3.0 JSON Schema, from the AsyncAPI project's own npm package (@asyncapi/specs), pinned by its
  # hash: tests validate contract/asyncapi.json with it. Kept in .cache/, never committed.
  .venv/bin/python scripts/fetch_asyncapi_spec.py
  # promtool, Prometheus' own checker of the metrics text format and its naming rules, taken out of Debian's
  # prometheus package without installing it (no server, no service): tests run `promtool check metrics` on
  # the agent's and the center's /metrics. Kept in .cache/, never committed.
  if [ ! -x .cache/promtool/promtool ]; then
    deb_dir="$(mktemp -d)"
    if ! (cd "$deb_dir" && apt-get download -qq prometheus 2>/dev/null); then
      SUDO=""
      [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      $SUDO apt-get update -qq  # a machine whose package lists were cleaned
      (cd "$deb_dir" && apt-get download -qq prometheus)
    fi
    mkdir -p .cache/promtool
    dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -O ./usr/bin/promtool > .cache/promtool/promtool.part
    chmod +x .cache/promtool/promtool.part
    mv .cache/promtool/promtool.part .cache/promtool/promtool
    rm -rf "$deb_dir"
    echo "setup: .cache/promtool/promtool ($(.cache/promtool/promtool --version 2>&1 | head -1))"
  fi
fi
echo "setup: ready (.venv, extra: $extra)"
