#!/usr/bin/env bash
# Run the README's commands on a freshly made minimal Debian 12, as a new user would.
#
#   sudo scripts/fresh-check.sh [--ward-only] [WORKDIR]      (default WORKDIR: /var/tmp/camwatch-fresh)
#
# Builds two roots with `debootstrap --variant=minbase bookworm`, each holding
# only what a fresh install has plus Python 3, git and ca-certificates:
#   dev/   this checkout and ../shared copied in; `bash scripts/demo.sh` for a
#          bounded time (the status must show online and failing cameras), then
#          `bash scripts/test.sh` (the whole suite, as CI runs it);
#   ward/  `deploy/install-agent.sh` as on a ward PC (no systemd running), then
#          `camwatch check-config` and `camwatch probe` against a camera served
#          from the dev root, and the center's runtime (`camwatch[center]`)
#          started against a Mosquitto from the dev root.
# Both roots share this machine's network (everything listens on 127.0.0.1).
# Too slow for every CI run (about 15-20 minutes): run it before closing any
# issue that adds a dependency. Exit 0 only if every step passed. --ward-only
# redoes only the ward PC, with the dev root of an earlier full run.
set -euo pipefail
ward_only=0
if [ "${1:-}" = "--ward-only" ]; then ward_only=1; shift; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="$(cd "$here/../shared" && pwd)"
work="${1:-/var/tmp/camwatch-fresh}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
demo_s="${FRESH_DEMO_SECONDS:-75}"
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: run as root (it uses debootstrap and chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-check: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  stop_server || true
}
trap cleanup EXIT

step() { printf '\n== fresh-check: %s\n' "$*"; }
fail() { printf '\n== fresh-check FAILED: %s\n' "$*" >&2; exit 1; }

make_root() {  # make_root DIR: a new minimal Debian 12 with python3, git, ca-certificates; /proc, /dev, /sys mounted
  local root="$1"
  # Anything still mounted there (an earlier run killed before its cleanup) is let go first, and rm never
  # crosses into another file system: /dev inside the root is this machine's own.
  awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$root"
  step "debootstrap --variant=minbase bookworm $root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || fail "debootstrap (see $root.debootstrap.log)"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount_root "$root"
  in_root "$root" 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 git ca-certificates >/dev/null'
  # The one thing carried over from this machine: the local certificate authorities it trusts
  # (a network's TLS proxy), without which nothing in the root could reach the package index.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    in_root "$root" 'update-ca-certificates >/dev/null'
  fi
}

mount_root() {  # mount_root DIR: /proc, /sys, /dev, a fresh /dev/shm and /tmp
  local root="$1"
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --rbind /sys "$root/sys" && mounted+=("$root/sys")
  mount --rbind /dev "$root/dev" && mounted+=("$root/dev")
  mkdir -p "$root/dev/shm" && mount -t tmpfs -o size=1g tmpfs "$root/dev/shm" && mounted+=("$root/dev/shm")
  mount -t tmpfs tmpfs "$root/tmp" && mounted+=("$root/tmp")
}

root_env=(/usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
in_root() {  # in_root DIR COMMAND: run COMMAND with bash inside the root, as a fresh login would
  chroot "$1" "${root_env[@]}" bash -c "$2"
}
serve_from() {  # serve_from DIR LOG COMMAND: COMMAND in the background inside the root; its pid in server_pid
  chroot "$1" "${root_env[@]}" bash -c "exec $3" >"$2" 2>&1 &
  server_pid=$!
}
stop_server() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  server_pid=""
}

copy_checkout() {  # copy_checkout DIR: the checkout's files (tracked and new, not ignored: no .venv) and ../shared
  local root="$1"
  mkdir -p "$root/work/main" "$root/work/shared"
  (cd "$here" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | xargs -0 cp --parents -t "$root/work/main")
  cp -r "$shared/." "$root/work/shared/"
}

mkdir -p "$work"
dev="$work/dev"
ward="$work/ward"

# 1. The README's two commands on a fresh machine.
if [ "$ward_only" -eq 1 ]; then
  [ -x "$dev/work/main/.venv/bin/python" ] || fail "--ward-only needs the dev root of an earlier full run in $dev"
  mount_root "$dev"
else
make_root "$dev"
copy_checkout "$dev"
step "dev: bash scripts/demo.sh --duration $demo_s"
in_root "$dev" "cd /work/main && timeout $((demo_s + 600)) bash scripts/demo.sh --duration $demo_s" >"$work/demo.log" 2>&1 \
  || fail "the demo exited non-zero (see $work/demo.log)"
grep -Eq '\bonline\b' "$work/demo.log" || fail "the demo showed no online camera (see $work/demo.log)"
grep -Eq 'auth_failed|unreachable|not_found|no_video' "$work/demo.log" || fail "the demo showed no failing camera (see $work/demo.log)"
echo "demo: online and failing cameras seen ($work/demo.log)"
step "dev: bash scripts/test.sh"
in_root "$dev" "cd /work/main && bash scripts/test.sh -q" 2>&1 | tee "$work/test.log" | tail -n 25
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "the tests (see $work/test.log)"
fi

# 2. A ward PC: the installer, then check-config and probe; the center's runtime.
make_root "$ward"
copy_checkout "$ward"
step "ward: deploy/install-agent.sh"
in_root "$ward" "cd /work/main && bash deploy/install-agent.sh" 2>&1 | tee "$work/install.log" | tail -n 12
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "deploy/install-agent.sh (see $work/install.log)"
step "ward: camwatch check-config /etc/camwatch/ward.toml"
in_root "$ward" 'set -a; . /etc/camwatch/agent.env; set +a; /opt/camwatch/.venv/bin/camwatch check-config /etc/camwatch/ward.toml' \
  || fail "check-config of the installed example config"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
step "ward: camwatch probe (a camera served from the dev root on 127.0.0.1:$port)"
serve_from "$dev" "$work/rtsp.log" \
  "/usr/bin/python3 /work/main/agent/sim/gst_rtsp_server.py --port $port --mount cam1=video:640x360@15,gop=30 --user admin --password s3cret"
for _ in $(seq 100); do grep -q READY "$work/rtsp.log" && break; sleep 0.1; done
in_root "$ward" "/opt/camwatch/.venv/bin/camwatch probe rtsp://admin:s3cret@127.0.0.1:$port/cam1 --snapshot /tmp/cam1.jpg" \
  || fail "probe of a working camera"
in_root "$ward" "test -s /tmp/cam1.jpg" || fail "probe saved no snapshot"
set +e
in_root "$ward" "/opt/camwatch/.venv/bin/camwatch probe rtsp://admin:wrong@127.0.0.1:$port/cam1" >"$work/probe-bad.log" 2>&1
rc=$?
set -e
cat "$work/probe-bad.log"
[ "$rc" -eq 2 ] && grep -q auth_failed "$work/probe-bad.log" || fail "probe with a wrong password did not say auth_failed (exit $rc)"
stop_server || true
step "ward: the center's runtime (camwatch[center]) against a Mosquitto from the dev root"
in_root "$ward" 'bash /work/main/deploy/install-python.sh /opt/center /work/main/requirements/center.lock' || fail "install the center from requirements/center.lock"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$dev/tmp/mosquitto.conf"
serve_from "$dev" "$work/mosquitto.log" "/usr/sbin/mosquitto -c /tmp/mosquitto.conf"
sleep 1
web="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$ward/tmp/center.toml" <<EOF
[mqtt]
host = "127.0.0.1"
port = $port
[store]
url = "sqlite:////tmp/center.db"
[web]
listen = "127.0.0.1:$web"
EOF
in_root "$ward" '/opt/center/bin/camwatch check-config /tmp/center.toml' || fail "check-config of a center config"
in_root "$ward" "cd /tmp && timeout 30 /opt/center/bin/python - <<PY
import subprocess, sys, time, urllib.request
p = subprocess.Popen(['/opt/center/bin/camwatch', 'center', '--config', '/tmp/center.toml'])
try:
    for _ in range(200):
        try:
            with urllib.request.urlopen('http://127.0.0.1:$web/login', timeout=1) as r:
                print('center: login page', r.status)
                sys.exit(0 if r.status == 200 else 1)
        except OSError:
            time.sleep(0.1)
    sys.exit('center: no answer on its web port')
finally:
    p.terminate()
    p.wait(10)
PY" || fail "the center did not start and serve its pages"
stop_server || true
step "all passed"
