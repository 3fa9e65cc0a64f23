"""A real Mosquitto on a loopback port, for tests and benchmarks (Debian's ``mosquitto``).

Optional password users, persistence and a TLS listener. As root, Mosquitto
drops to its own user, which cannot read files in our temp dirs: then the
config says ``user root``.
"""

from __future__ import annotations

import os
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
        deadline = time.monotonic() + 5.0
        while not self._listening() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._listening():
            self.stop()
            raise RuntimeError("mosquitto did not start")
        return self

    def _listening(self) -> bool:
        for port in (self.port, self.tls_port):
            if port is None:
                continue
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
