#!/usr/bin/env bash
# Install the camwatch center (Debian 12, systemd), from this checkout or an unpacked offline bundle
# (deploy/make-bundle.sh center). The broker (deploy/mosquitto) and PostgreSQL are set up separately,
# or all three come up together with deploy/compose.yaml.
#   sudo deploy/install-center.sh
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
wheels=""
[ -d "$src/wheels" ] && wheels="$src/wheels"
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  if [ -n "$wheels" ] && compgen -G "$src/debs/*.deb" >/dev/null; then
    dpkg -i "$src"/debs/*.deb >/dev/null
  else
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi
fi
id camwatch >/dev/null 2>&1 || useradd --system --home /var/lib/camwatch --shell /usr/sbin/nologin camwatch
install -d -m 0755 /opt/camwatch
install -d -m 0750 -g camwatch /etc/camwatch
install -d -m 0700 /etc/camwatch/credentials
install -d -m 0750 -o camwatch -g camwatch /var/lib/camwatch
cp -r "$src/README.md" "$src/requirements" /opt/camwatch/
"$src/deploy/install-python.sh" /opt/camwatch/.venv "$src/requirements/center.lock" "$wheels"
if [ ! -f /etc/camwatch/center.toml ]; then
  cp "$src/config/center.example.toml" /etc/camwatch/center.toml
  echo "wrote /etc/camwatch/center.toml: edit it (broker user, store)"
fi
chown root:camwatch /etc/camwatch/center.toml
chmod 0640 /etc/camwatch/center.toml
[ -f /etc/camwatch/center.env ] || install -m 0600 /dev/null /etc/camwatch/center.env  # e.g. PGPASSWORD=...
chown root:root /etc/camwatch/center.env
chmod 0600 /etc/camwatch/center.env
# The broker password for user "center" (deploy/camwatch-pki's center.env, the value only).
[ -f /etc/camwatch/credentials/center-mqtt-password ] ||
  install -m 0600 /dev/null /etc/camwatch/credentials/center-mqtt-password
mkdir -p /etc/systemd/system
install -m 0644 "$src/deploy/camwatch-center.service" /etc/systemd/system/camwatch-center.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable camwatch-center.service
else
  echo "systemd is not running here: installed the unit, did not enable it"
fi
echo "add the first admin: sudo -u camwatch /opt/camwatch/.venv/bin/camwatch center --config /etc/camwatch/center.toml add-user admin --role admin"
echo "then start:          systemctl start camwatch-center && journalctl -fu camwatch-center"
