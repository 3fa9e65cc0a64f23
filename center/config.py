"""The center's configuration (``center.toml``), validated like the agent's: key paths, every error at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from common.config import Listen, read_toml, split_listen, validate_tree
from common.i18n import _
from common.mqtt import MqttConfig
from common.redact import register_secret


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = Field(
        "sqlite:////var/lib/camwatch/center.db",
        description="sqlite:///PATH (relative) or sqlite:////ABS/PATH, or postgresql://USER:PASS@HOST/DB",
    )
    retention_days: float = Field(400, ge=1, le=3650, description="events and state history kept this long")
    snapshot_retention_days: float = Field(30, ge=0, le=3650, description="event snapshots (JPEG) kept this long")

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(_("use sqlite:///PATH or postgresql://USER@HOST/DB"))
        return url


class WebConfig(_Strict):
    listen: Listen = Field("127.0.0.1:8080", description="HOST:PORT of the web pages and API")
    session_hours: float = Field(12, gt=0, le=24 * 31, description="a login lasts this long")
    tls_cert: Path | None = Field(None, description="serve HTTPS with this certificate (PEM), with tls_key")
    tls_key: Path | None = Field(None, description="the private key (PEM) of tls_cert")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses of reverse proxies whose X-Forwarded-For/-Proto are believed (HTTPS there)",
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(_("tls_cert and tls_key go together"))
        return self

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


class UptimeConfig(_Strict):
    unknown_after_s: float = Field(90, ge=10, le=86400, description="no message from a camera this long -> unknown")


class AlertLimits(_Strict):
    """How long a condition lasts before it is an alert; 0 turns that alert off. Unset in a rule: the default's."""

    offline_after_s: float | None = Field(None, ge=0, le=30 * 86400, description="a camera offline this long")
    degraded_after_s: float | None = Field(None, ge=0, le=30 * 86400, description="a camera degraded this long")
    agent_gone_after_s: float | None = Field(
        None, ge=0, le=30 * 86400, description="a ward's agent gone (lost or stopped) this long"
    )
    uptime_below_pct: float | None = Field(
        None, ge=0, le=100, description="a camera's uptime over a local day below this many percent"
    )


class AlertRule(AlertLimits):
    """Limits for one ward, or one camera of it (the most specific rule wins, key by key)."""

    ward: str = Field(min_length=1, max_length=64, description="the ward these limits are for")
    camera: str | None = Field(None, min_length=1, max_length=64, description="only this camera of the ward")


class EmailConfig(_Strict):
    host: str = Field(description="the SMTP server")
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(False, description="upgrade to TLS before logging in (port 587)")
    username: SecretStr | None = Field(None, description="SMTP login; ${ENV} or username_file")
    password: SecretStr | None = Field(None, description="SMTP password; ${ENV} or password_file")
    sender: str = Field(description="From: address")
    to: list[str] = Field(min_length=1, description="who receives the alerts")


class AlertsConfig(AlertLimits):
    """Alerts: on the pages and the API always; by webhook and e-mail when configured."""

    offline_after_s: float | None = Field(600, ge=0, le=30 * 86400, description="a camera offline this long")
    degraded_after_s: float | None = Field(3600, ge=0, le=30 * 86400, description="a camera degraded this long")
    agent_gone_after_s: float | None = Field(
        600, ge=0, le=30 * 86400, description="a ward's agent gone (lost or stopped) this long"
    )
    uptime_below_pct: float | None = Field(
        0, ge=0, le=100, description="a camera's uptime over a local day below this many percent (0: off)"
    )
    check_every_s: float = Field(15, ge=1, le=600, description="how often the conditions are looked at")
    rules: list[AlertRule] = Field(default_factory=list, description="limits per ward or camera")
    webhook_url: str | None = Field(None, description="POST each alert and recovery here as JSON")
    webhook_secret: SecretStr | None = Field(
        None, description="shared secret: X-Camwatch-Signature is the HMAC-SHA256 of timestamp.body"
    )
    email: EmailConfig | None = None

    @model_validator(mode="after")
    def _webhook(self) -> AlertsConfig:
        if self.webhook_url is not None:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError(_("webhook_url must start with http:// or https://"))
            if self.webhook_secret is None:
                raise ValueError(_("webhook_url needs webhook_secret (the receiver checks the signature)"))
        return self


class CenterConfig(_Strict):
    timezone: str = Field("Asia/Ho_Chi_Minh", description="for display and calendar periods; stored times are UTC")
    language: Literal["vi", "en"] = Field("vi", description="default page language (each user can switch)")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    uptime: UptimeConfig = Field(default_factory=UptimeConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(_("unknown time zone {name!r} (e.g. Asia/Ho_Chi_Minh)").format(name=name)) from None
        return name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


CENTER_KEYS = {"store", "web", "uptime", "timezone", "language", "alerts"}


def is_center_config(raw: dict[str, Any]) -> bool:
    """A center file has none of the agent's ward/cameras and at least one center key."""
    return "ward" not in raw and "cameras" not in raw and bool(CENTER_KEYS & raw.keys())


def parse_center_config(raw: dict[str, Any]) -> CenterConfig:
    config = validate_tree(CenterConfig, raw, example="config/center.example.toml")
    if config.mqtt.password is not None:
        register_secret(config.mqtt.password.get_secret_value())
    alerts = config.alerts
    for secret in (alerts.webhook_secret, alerts.email and alerts.email.password):
        if secret:
            register_secret(secret.get_secret_value())
    from urllib.parse import unquote, urlsplit

    password = urlsplit(config.store.url).password
    if password:
        register_secret(unquote(password))
    return config


def load_center_config(path: str | Path) -> CenterConfig:
    """Read and validate a center TOML file; raise ConfigError listing every problem."""
    return parse_center_config(read_toml(path))
