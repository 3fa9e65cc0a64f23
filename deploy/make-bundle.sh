#!/usr/bin/env bash
# Build an offline install bundle on a machine with access to the package index, for ward PCs (and a center)
# that have none. Run it on the same platform as the targets (Debian 12, x86_64, Python 3.11).
#   deploy/make-bundle.sh OUT_DIR
# OUT_DIR/camwatch-<version>.tar.gz then holds this checkout's deploy/, config/, models/ manifests,
# requirements/, the detection weights (when ../shared/models is beside this checkout), every wheel of the
# agent's and the center's locks (hash-checked) and camwatch's own wheel, and the .deb files python3-venv
# needs. On the target:
#   tar xzf camwatch-*.tar.gz && cd camwatch-*/ && sudo deploy/install-agent.sh    (or install-center.sh)
set -euo pipefail
out="${1:-}"
[ -n "$out" ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
src="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$src/agent/__init__.py")"
name="camwatch-$version"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dest="$stage/$name"
mkdir -p "$dest/wheels" "$dest/debs"
cp -r "$src/deploy" "$src/config" "$src/requirements" "$src/README.md" "$src/pyproject.toml" "$dest/"
mkdir -p "$dest/models" && cp "$src"/models/*.toml "$dest/models/"
cp -r "$src/agent" "$src/center" "$src/common" "$src/contract" "$dest/"
find "$dest/agent" "$dest/center" "$dest/common" "$dest/contract" -name __pycache__ -prune -exec rm -rf {} +
py="${PYTHON:-python3}"
tools="$stage/tools"
"$py" -m venv "$tools"
# the build backend alone, pinned and hashed as in the lock, to build camwatch's own wheel
awk '/^setuptools==/{on=1} on&&/^[^ ]/&&!/^setuptools==/{on=0} on' "$src/requirements/agent.lock" > "$stage/build.txt"
"$tools/bin/python" -m pip --disable-pip-version-check -q install --require-hashes -r "$stage/build.txt"
for lock in agent center; do
  "$tools/bin/python" -m pip --disable-pip-version-check -q download --require-hashes --no-deps --only-binary=:all: \
    -r "$src/requirements/$lock.lock" -d "$dest/wheels"
done
"$tools/bin/python" -m pip --disable-pip-version-check -q wheel --no-deps --no-build-isolation "$src" -w "$dest/wheels"
if [ -f "$src/../shared/models/yolox_nano_dynamic.onnx" ]; then
  mkdir -p "$dest/shared-models"
  cp "$src/../shared/models/"{yolox_nano_dynamic.onnx,coco.names,yolox_nano.LICENSE} "$dest/shared-models/"
fi
if command -v apt-get >/dev/null; then
  # python3 -m venv needs these on a stock Debian 12; the installer dpkg -i's them when venv is missing
  (cd "$dest/debs" && apt-get download python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl \
    >/dev/null 2>&1) || echo "make-bundle: could not fetch python3-venv's .deb files (the target must have python3-venv)"
fi
mkdir -p "$out"
tar -C "$stage" -I 'gzip -1' -cf "$out/$name.tar.gz" "$name"   # wheels are compressed already
echo "made $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1), $(ls "$dest/wheels" | wc -l) wheels)"
