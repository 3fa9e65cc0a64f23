#!/usr/bin/env bash
# Install the camwatch agent on a ward PC (Debian 12, systemd), from this checkout.
#   sudo deploy/install-agent.sh
# Puts the code in /opt/camwatch, the config in /etc/camwatch (kept if present),
# state in /var/lib/camwatch, and enables the camwatch-agent service.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
id camwatch >/dev/null 2>&1 || useradd --system --home /var/lib/camwatch --shell /usr/sbin/nologin camwatch
mkdir -p /opt/camwatch /etc/camwatch /var/lib/camwatch
# The whole distribution (agent and center packages: check-config reads either kind of file).
cp -r "$src/agent" "$src/center" "$src/pyproject.toml" "$src/README.md" /opt/camwatch/
[ -x /opt/camwatch/.venv/bin/python ] || python3 -m venv /opt/camwatch/.venv
/opt/camwatch/.venv/bin/pip install -q /opt/camwatch
# Detection model: the manifests from models/, the weights (and their licence) from
# ../shared/models beside this checkout when there; never downloaded.
mkdir -p /opt/camwatch/models
cp "$src"/models/*.toml /opt/camwatch/models/
weights="$src/../shared/models"
if [ -f "$weights/yolox_nano_dynamic.onnx" ]; then
  # YOLOX-nano, the default model; FastestDet too, when there ([detection] model = "fastestdet")
  cp "$weights/yolox_nano_dynamic.onnx" "$weights/coco.names" "$weights/yolox_nano.LICENSE" /opt/camwatch/models/
  if [ -f "$weights/fastestdet.onnx" ]; then
    cp "$weights/fastestdet.onnx" "$weights/fastestdet.LICENSE" /opt/camwatch/models/
  fi
else
  echo "no detection weights found in $weights: copy yolox_nano_dynamic.onnx, coco.names and yolox_nano.LICENSE"
  echo "to /opt/camwatch/models/ (until then the agent runs without detection and says so)"
fi
if [ ! -f /etc/camwatch/ward.toml ]; then
  sed 's|^# model_dir = "/opt/camwatch/models"|model_dir = "/opt/camwatch/models"|' \
    "$src/config/ward.example.toml" > /etc/camwatch/ward.toml
  echo "wrote /etc/camwatch/ward.toml: edit it (ward id, broker, cameras)"
fi
if [ ! -f /etc/camwatch/agent.env ]; then
  install -m 0600 "$src/deploy/agent.env.example" /etc/camwatch/agent.env
  echo "wrote /etc/camwatch/agent.env: put the passwords there"
fi
chown -R camwatch:camwatch /var/lib/camwatch
mkdir -p /etc/systemd/system
install -m 0644 "$src/deploy/camwatch-agent.service" /etc/systemd/system/camwatch-agent.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable camwatch-agent.service
else
  echo "systemd is not running here: installed the unit, did not enable it (systemctl enable camwatch-agent once booted with systemd)"
fi
echo "check the config:  set -a; . /etc/camwatch/agent.env; /opt/camwatch/.venv/bin/camwatch check-config /etc/camwatch/ward.toml"
echo "then start:        systemctl start camwatch-agent && journalctl -fu camwatch-agent"
