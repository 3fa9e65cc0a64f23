# Sourced by install-agent.sh and install-center.sh (as root, with $src set): what both installs share.
# python3-venv (from an offline bundle's .deb files when there is no network), the camwatch user, its
# directories: /etc/camwatch (root:camwatch 0750), its credentials (root only), /var/lib/camwatch.
wheels=""
[ -d "$src/wheels" ] && wheels="$src/wheels"  # an offline bundle (deploy/make-bundle.sh)
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

# install_secret_file PATH: a file only root reads (made empty if missing, its mode set if present)
install_secret_file() {
  [ -f "$1" ] || install -m 0600 /dev/null "$1"
  chown root:root "$1"
  chmod 0600 "$1"
}

# install_unit NAME: the hardened unit, enabled when systemd runs here
install_unit() {
  mkdir -p /etc/systemd/system
  install -m 0644 "$src/deploy/$1.service" "/etc/systemd/system/$1.service"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable "$1.service"
  else
    echo "systemd is not running here: installed the unit, did not enable it (systemctl enable $1 once booted with systemd)"
  fi
}
