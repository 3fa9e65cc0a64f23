"""A real Mosquitto on a loopback port, for tests and benchmarks (Debian's ``mosquitto``).

Optional password users, persistence and a TLS listener. As root, Mosquitto
drops to its own user, which cannot read files in our temp dirs: then the
config says ``user root``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from agent.sim.rtsp import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
        persistence: bool = False,
        tls: tuple[Path, Path, Path] | None = None,
        *,
        extra_conf: str = "",
    ) -> None:
        self.extra_conf = extra_conf  # more mosquitto.conf lines, e.g. "max_inflight_messages 1000"
        self.port = port or free_port()
        self.tls = tls  # (ca, cert, key): a second, TLS listener on tls_port
        self.tls_port = free_port() if tls else None
        self.workdir = workdir
        self.users = users or {}
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        auth = "allow_anonymous true\n"
        if self.users:
            passwd = self.workdir / f"mosquitto-{self.port}.passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True, capture_output=True)
            passwd.chmod(0o600)
            auth = f"allow_anonymous false\npassword_file {passwd}\n"
            if os.geteuid() == 0:
                # As root, mosquitto drops to its own user, which cannot read our temp dir.
                auth += "user root\n"
        persist = "persistence false\n"
        if self.persistence:
            persist = f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
            if os.geteuid() == 0 and "user root" not in auth:
                auth += "user root\n"
        if self.tls:
            ca, cert, key = self.tls
            persist += f"listener {self.tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            if os.geteuid() == 0 and "user root" not in auth:
                auth += "user root\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{auth}{persist}log_dest stderr\nlog_type error\nlog_type warning\n"
            f"{self.extra_conf}\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
        if not _wait_listening(self.proc, [p for p in (self.port, self.tls_port) if p is not None]):
            self.stop()
            raise RuntimeError("mosquitto did not start")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PKI = DEPLOY / "camwatch-pki"
# Debian's /etc/mosquitto/mosquitto.conf as the package ships it (used when this machine's is missing).
DEBIAN_STOCK_CONF = """pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""


def run_pki(*args: str) -> str:
    """Run deploy/camwatch-pki; its output, or RuntimeError with its error."""
    done = subprocess.run([str(PKI), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"camwatch-pki {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class ShippedMosquitto:
    """Mosquitto started from Debian's stock mosquitto.conf plus exactly the shipped ``deploy/mosquitto`` files.

    The files are copied under ``root`` with only their paths (``/etc``, ``/var``,
    ``/run``) moved there, the listeners' ports swapped for free loopback ports, and,
    as root, ``user root`` added (Mosquitto would drop to a user that cannot read a
    temp dir). ``pki`` is a directory made by ``deploy/camwatch-pki``.
    """

    SHIPPED_PORTS = (1883, 8883, 8884)

    def __init__(self, root: Path, pki: Path, main_conf: str | None = None) -> None:
        self.root = root
        self.pki = pki
        self.main_conf = main_conf  # instead of Debian's stock mosquitto.conf (e.g. the container's)
        self.ports = {p: free_port() for p in self.SHIPPED_PORTS}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "var/log/mosquitto/mosquitto.log"

    @property
    def local_port(self) -> int:
        return self.ports[1883]

    @property
    def password_port(self) -> int:
        return self.ports[8883]

    @property
    def cert_port(self) -> int:
        return self.ports[8884]

    def _moved(self, text: str) -> str:
        paths = r"(?<![\w/.-])(/etc/mosquitto|/var/lib/mosquitto|/var/log/mosquitto|/run/mosquitto|/mosquitto)\b"
        text = re.sub(paths, lambda m: f"{self.root}{m[1]}", text)
        lines = []
        for line in text.splitlines():
            words = line.split()
            moved = words[:1] == ["listener"] and int(words[1]) in self.ports
            lines.append(f"listener {self.ports[int(words[1])]} 127.0.0.1" if moved else line)
        return "\n".join(lines) + "\n"

    def install(self) -> ShippedMosquitto:
        etc = self.root / "etc/mosquitto"
        (etc / "conf.d").mkdir(parents=True, exist_ok=True)
        (etc / "camwatch").mkdir(exist_ok=True)
        for d in ("var/lib/mosquitto", "var/log/mosquitto", "run/mosquitto", "mosquitto/data"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        stock = Path("/etc/mosquitto/mosquitto.conf")
        main = self.main_conf or (stock.read_text() if stock.exists() else DEBIAN_STOCK_CONF)
        if os.geteuid() == 0:
            main += "user root\n"
        (etc / "mosquitto.conf").write_text(self._moved(main))
        (etc / "conf.d/camwatch.conf").write_text(self._moved((DEPLOY / "mosquitto/conf.d/camwatch.conf").read_text()))
        shutil.copy(DEPLOY / "mosquitto/camwatch.acl", etc / "camwatch/acl")
        self.reload_pki()
        return self

    def reload_pki(self) -> None:
        """Copy the PKI directory's broker files in (and SIGHUP a running broker, as ``systemctl reload`` does)."""
        etc = self.root / "etc/mosquitto/camwatch"
        for name in ("ca.pem", "crl.pem", "broker.pem", "broker.key", "passwd"):
            shutil.copy(self.pki / name, etc / name)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(1)
            time.sleep(0.3)

    def start(self) -> ShippedMosquitto:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.root / "etc/mosquitto/mosquitto.conf")], stderr=subprocess.DEVNULL
        )
        if not _wait_listening(self.proc, list(self.ports.values())):
            self.stop()
            raise RuntimeError(f"mosquitto did not start from the shipped config: {self.log_text()[-2000:]}")
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int], timeout: float = 5.0) -> bool:
    """Whether every port listens within ``timeout`` (False at once if the process exits)."""
    deadline = time.monotonic() + timeout
    while not all(_listening(p) for p in ports):
        if proc.poll() is not None or time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
