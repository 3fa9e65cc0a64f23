"""JSON Schemas of the MQTT contract, version 1 (health, event, agent, stats), and :func:`schema` to read one."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from contract.vocab import AGENT_SCHEMA, EVENT_SCHEMA, HEALTH_SCHEMA, STATS_SCHEMA

SCHEMAS = {
    HEALTH_SCHEMA: "health.json",
    EVENT_SCHEMA: "event.json",
    AGENT_SCHEMA: "agent.json",
    STATS_SCHEMA: "stats.json",
}


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a payload kind, e.g. ``schema("camwatch.health/1")``."""
    text = resources.files(__name__).joinpath(SCHEMAS[name]).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
