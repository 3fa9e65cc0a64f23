"""A ward's uplink for tests and benchmarks: a TCP proxy on 127.0.0.1 that can be cut like a real one.

``cut()`` does what a dead uplink does: no byte passes either way on open
connections (they stay open, silent, until keepalives give up) and new
connections are refused. ``restore()`` ends the silent connections (as the
network would, once their peers timed out) and accepts new ones again.
"""

from __future__ import annotations

import selectors
import socket
import threading

from agent.sim.rtsp import free_port


class Uplink:
    def __init__(self, target_port: int, port: int | None = None, target_host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.target = (target_host, target_port)
        self._silent = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.connections = 0

    def start(self) -> Uplink:
        self._listen()
        return self

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.settimeout(0.2)
        self._listener = sock
        t = threading.Thread(target=self._accept, args=(sock,), name="uplink-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set() and listener is self._listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: the uplink was cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            t = threading.Thread(target=self._pump, args=(client, upstream), name="uplink-pump", daemon=True)
            t.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stop.is_set():
                if self._silent.is_set():
                    self._stop.wait(0.05)  # nothing read, nothing sent: bytes wait in the kernel, as on a dead link
                    continue
                for key, _ in sel.select(timeout=0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = src.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if self._silent.is_set():
                        return  # cut while reading: this connection is lost
                    try:
                        key.data.sendall(data)
                    except OSError:
                        return
        finally:
            sel.close()
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """The uplink dies: open connections go silent, new ones are refused."""
        self._silent.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def restore(self) -> None:
        """The uplink is back: the old connections are gone, new ones pass."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._silent.clear()
        self._listen()

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        for t in self._threads:
            t.join(2)
