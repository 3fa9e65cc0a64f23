#!/usr/bin/env bash
# Install the camwatch agent on a ward PC (Debian 12, systemd), from this checkout or from an unpacked
# offline bundle (deploy/make-bundle.sh: then nothing is downloaded).
#   sudo deploy/install-agent.sh
# Puts the code in /opt/camwatch (exactly the locked dependencies, hash-checked), the config in
# /etc/camwatch (kept if present; root:camwatch 0640, secrets root-only), state in /var/lib/camwatch,
# and enables the hardened camwatch-agent service.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

# shellcheck source=deploy/install-base.sh
. "$src/deploy/install-base.sh"
"$src/deploy/install-python.sh" /opt/camwatch/.venv "$src/requirements/agent.lock" "$wheels"
# Detection model: the manifests from models/, the weights (and their licence) from the bundle, or from
# ../shared/models beside this checkout; never downloaded.
mkdir -p /opt/camwatch/models
cp "$src"/models/*.toml /opt/camwatch/models/
weights="$src/shared-models"
[ -d "$weights" ] || weights="$src/../shared/models"
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
chown root:camwatch /etc/camwatch/ward.toml
chmod 0640 /etc/camwatch/ward.toml
if [ ! -f /etc/camwatch/agent.env ]; then
  install -m 0600 "$src/deploy/agent.env.example" /etc/camwatch/agent.env
  echo "wrote /etc/camwatch/agent.env: put the camera passwords there"
fi
install_secret_file /etc/camwatch/agent.env
# The broker password (deploy/camwatch-pki's agent.env line, without the name): systemd hands it to the agent.
install_secret_file /etc/camwatch/credentials/mqtt-password
install_unit camwatch-agent
echo "check the config:  set -a; . /etc/camwatch/agent.env; /opt/camwatch/.venv/bin/camwatch check-config /etc/camwatch/ward.toml"
echo "then start:        systemctl start camwatch-agent && journalctl -fu camwatch-agent"
