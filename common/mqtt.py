"""MQTT as both sides connect: the ``[mqtt]`` table, a paho client set up from it (credentials, TLS, quiet
logging, reconnect backoff), and why a broker cannot be reached, in plain words."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from pydantic import Field, SecretStr, model_validator

from common.config import Strict
from common.i18n import _

RECONNECT_MAX_S = 3  # the broker is tried again at least this often while it cannot be reached


class MqttConfig(Strict):
    host: str = Field("127.0.0.1", min_length=1, description="broker host name or IP")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 for TLS)")
    username: SecretStr | None = Field(None, description="broker user; ${ENV} or username_file")
    password: SecretStr | None = Field(None, description="broker password; ${ENV} or password_file")
    topic_prefix: str = Field("camwatch", pattern=r"^[A-Za-z0-9_/-]+$", description="first topic level(s)")
    client_id: str | None = Field(None, description="MQTT client id; default camwatch-agent-{ward}")
    keepalive_s: int = Field(
        15, ge=5, le=600, description="MQTT keepalive; the last will fires ~1.5x this after a silent loss"
    )
    tls: bool = Field(False, description="use TLS (implied by ca_file)")
    ca_file: Path | None = Field(None, description="CA certificate (PEM) to verify the broker")
    cert_file: Path | None = Field(None, description="client certificate (PEM), with key_file")
    key_file: Path | None = Field(None, description="client private key (PEM), with cert_file")
    queue_max: int = Field(
        10000, ge=10, le=10_000_000, description="messages kept (on disk) while the broker is unreachable"
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT version; 3.1.1 only for a broker without MQTT 5 (then a refused publish looks delivered)",
    )

    @model_validator(mode="after")
    def _pairs(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError(_("password is set but username is not"))
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(_("cert_file and key_file go together"))
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None


# The broker's TLS alerts, in plain words (what an installer can act on).
TLS_ALERTS = {
    "CERTIFICATE_EXPIRED": "the broker refused this agent's client certificate: it has expired (make a new one: "
    "deploy/camwatch-pki ward DIR WARD)",
    "CERTIFICATE_REVOKED": "the broker refused this agent's client certificate: it has been revoked",
    "UNKNOWN_CA": "the broker does not trust this agent's client certificate (signed by another CA)",
    "BAD_CERTIFICATE": "the broker refused this agent's client certificate",
    "CERTIFICATE_UNKNOWN": "the broker refused this agent's client certificate",
    "CERTIFICATE_REQUIRED": "the broker wants a client certificate (set cert_file and key_file)",
}


def plain_socket_error(text: str) -> str:
    """What a socket error from the broker's side means, in words an installer can act on."""
    for alert, words in TLS_ALERTS.items():
        if alert in text:
            return words
    return f"the connection to the broker failed: {text}"


def diagnose_broker(config: MqttConfig, timeout: float = 3.0) -> str:
    """Why a connection to the broker fails, in plain words (TCP, then TLS)."""
    try:
        sock = socket.create_connection((config.host, config.port), timeout=timeout)
    except socket.gaierror as exc:
        return f"cannot resolve host name ({exc.strerror})"
    except TimeoutError:
        return f"no answer within {timeout:g} s (host down or port filtered)"
    except OSError as exc:
        return exc.strerror or str(exc)
    with sock:
        if not config.use_tls:
            return "TCP connects but the MQTT handshake failed"
        try:
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if config.cert_file and config.key_file:
                context.load_cert_chain(str(config.cert_file), str(config.key_file))
            with context.wrap_socket(sock, server_hostname=config.host):
                return "TLS works but the MQTT handshake failed"
        except ssl.SSLError as exc:
            return f"TLS handshake failed: {exc.reason or exc}"
        except OSError as exc:
            return f"TLS set-up failed: {exc.strerror or exc}"


class _ClientLogger(logging.Logger):
    """One paho client's logger, not registered with ``logging`` (it goes with the client); its level is its
    parent's, asked each time (a registered logger's level cache would not see later changes)."""

    def __init__(self, parent: logging.Logger, noise: logging.Filter) -> None:
        super().__init__(parent.name)
        self.parent = parent
        self.addFilter(noise)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return self.parent is not None and self.parent.isEnabledFor(level)


class _PahoNoise(logging.Filter):
    """Drops what paho repeats on every reconnect attempt; hands socket errors to ``on_socket_error``."""

    def __init__(self, on_socket_error: Callable[[str], None] | None) -> None:
        super().__init__()
        self.on_socket_error = on_socket_error

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "Client is not connected" in msg:
            return False
        if self.on_socket_error is not None and msg.startswith("failed to receive on socket"):
            self.on_socket_error(msg.partition(": ")[2])
            return False
        return True


def configure_client(
    client: mqtt.Client, c: MqttConfig, logger: str, on_socket_error: Callable[[str], None] | None = None
) -> None:
    """Credentials, TLS, quiet logging and reconnect backoff from an ``[mqtt]`` table.

    Paho's own log lines go to ``logger``, except those it repeats on every reconnect attempt: "Client is not
    connected" (``on_connect_fail`` says why, once) and socket errors, which go to ``on_socket_error`` when
    given (to be said once, in plain words).
    """
    # A logger of this client's own (not registered: it goes with the client) whose records go on to
    # ``logger``. Paho checks its level before formatting anything: debug lines cost nothing per packet.
    client.enable_logger(_ClientLogger(logging.getLogger(logger), _PahoNoise(on_socket_error)))
    if c.username is not None:
        client.username_pw_set(c.username.get_secret_value(), c.password.get_secret_value() if c.password else None)
    if c.use_tls:
        client.tls_set(
            ca_certs=str(c.ca_file) if c.ca_file else None,
            certfile=str(c.cert_file) if c.cert_file else None,
            keyfile=str(c.key_file) if c.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    # A link that comes back is used within seconds (a ward's cameras must show their true state at the
    # center within 5 s of its uplink's return); one connect attempt every few seconds costs a broker nothing.
    client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
