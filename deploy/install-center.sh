#!/usr/bin/env bash
# Install the camwatch center (Debian 12, systemd), from this checkout or an unpacked offline bundle
# (deploy/make-bundle.sh). The broker (deploy/mosquitto) and PostgreSQL are set up separately,
# or all three come up together with deploy/compose.yaml.
#   sudo deploy/install-center.sh
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
# shellcheck source=deploy/install-base.sh
. "$src/deploy/install-base.sh"
"$src/deploy/install-python.sh" /opt/camwatch/.venv "$src/requirements/center.lock" "$wheels"
if [ ! -f /etc/camwatch/center.toml ]; then
  cp "$src/config/center.example.toml" /etc/camwatch/center.toml
  echo "wrote /etc/camwatch/center.toml: edit it (broker user, store)"
fi
chown root:camwatch /etc/camwatch/center.toml
chmod 0640 /etc/camwatch/center.toml
install_secret_file /etc/camwatch/center.env  # e.g. PGPASSWORD=...
# The broker password for user "center" (deploy/camwatch-pki's center.env, the value only).
install_secret_file /etc/camwatch/credentials/center-mqtt-password
install_unit camwatch-center
echo "add the first admin: sudo -u camwatch /opt/camwatch/.venv/bin/camwatch center --config /etc/camwatch/center.toml add-user admin --role admin"
echo "then start:          systemctl start camwatch-center && journalctl -fu camwatch-center"
