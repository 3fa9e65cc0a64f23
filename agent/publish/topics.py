"""Topic names of the MQTT contract, version 1."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    ward: str

    @property
    def agent_status(self) -> str:
        return f"{self.prefix}/{self.ward}/agent/status"

    @property
    def agent_stats(self) -> str:
        return f"{self.prefix}/{self.ward}/agent/stats"

    def health(self, camera: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/health"

    def events(self, camera: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/events"

    def snapshot(self, camera: str, event_id: str) -> str:
        return f"{self.prefix}/{self.ward}/{camera}/snapshot/{event_id}"


def health_filter(prefix: str, ward: str | None = None) -> str:
    """Subscription filter for the retained health of one ward or all wards."""
    return f"{prefix}/{ward or '+'}/+/health"
