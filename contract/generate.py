"""The contract's documents, generated from its models and channels: the JSON Schemas and the AsyncAPI 3.0 document.

    python -m contract.generate           write contract/schemas/*.json and contract/asyncapi.json
    python -m contract.generate --check   exit 1, naming them, if the committed files differ

Nothing here is written by hand twice: a payload's fields come from
:mod:`contract.payloads`, a topic's address, QoS and retain flag from
:data:`contract.topics.CHANNELS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from contract.payloads import ADAPTERS, AgentStatus, Detection, Health, StateChanged, Stats, to_wire
from contract.schemas import SCHEMAS
from contract.topics import AGENT, CHANNELS
from contract.vocab import AGENT_SCHEMA, EVENT_SCHEMA, HEALTH_SCHEMA, STATS_SCHEMA

HERE: Final = Path(__file__).resolve().parent
ASYNCAPI_FILE: Final = HERE / "asyncapi.json"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
MQTT_BINDING: Final = "0.2.0"
TITLES: Final = {
    HEALTH_SCHEMA: "camwatch camera health (retained, on every change and every heartbeat_s)",
    EVENT_SCHEMA: "camwatch camera event (not retained, QoS 1; dedup by id)",
    AGENT_SCHEMA: "camwatch agent status (retained; also the MQTT last will)",
    STATS_SCHEMA: "camwatch agent resource figures (QoS 0, every stats_s)",
}


class _Schema(GenerateJsonSchema):
    """pydantic's generator, without a title on every field (the field's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _strip_discriminator(node: Any) -> Any:
    """pydantic writes OpenAPI's ``discriminator`` object; JSON Schema has no such keyword (oneOf decides)."""
    if isinstance(node, dict):
        return {k: _strip_discriminator(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_strip_discriminator(v) for v in node]
    return node


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one payload kind, e.g. ``camwatch.health/1``."""
    body = ADAPTERS[name].json_schema(schema_generator=_Schema, mode="validation")
    body = _strip_discriminator(body)
    body.pop("title", None)
    head = {"$schema": JSON_SCHEMA_DIALECT, "$id": name, "title": TITLES[name]}
    return {**head, **body}


# -- AsyncAPI 3.0 ------------------------------------------------------------------------------------------------

PARAMETERS: Final = {
    "prefix": "the topic prefix ([mqtt] topic_prefix; default camwatch), one or more levels",
    "ward": "the ward's id ([agent] ward): lower-case letters, digits, _ and -",
    "camera": "the camera's id ([[cameras]] id): lower-case letters, digits, _ and -",
    "event_id": "the id of the detection_started event the picture belongs to",
}
COMPONENT_OF: Final = {
    HEALTH_SCHEMA: "Health",
    EVENT_SCHEMA: "Event",
    AGENT_SCHEMA: "AgentStatus",
    STATS_SCHEMA: "Stats",
}


def _components_schemas() -> dict[str, Any]:
    """Every payload's schema and the schemas they use, referenced as ``#/components/schemas/{name}``."""
    inputs: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = [
        (name, "validation", ADAPTERS[name]) for name in COMPONENT_OF
    ]
    tops, defs = TypeAdapter.json_schemas(inputs, ref_template="#/components/schemas/{model}", schema_generator=_Schema)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), top in tops.items():
        if "$ref" in top:  # a model: its schema is among the defs already
            continue
        schemas[COMPONENT_OF[name]] = top
    for node in schemas.values():  # AsyncAPI's Schema Object names the discriminating property, no more
        if isinstance(node.get("discriminator"), dict):
            node["discriminator"] = node["discriminator"]["propertyName"]
    return schemas


def _examples() -> dict[str, list[dict[str, Any]]]:
    """One payload of each kind, as an agent sends it (validated by the models as they are built)."""
    at, since = "2026-12-03T08:15:30.250Z", "2026-12-03T06:02:11.900Z"
    common = {"ward": "phuong-1", "camera": "cho-dong-ba"}
    health = Health.model_validate(
        {
            "schema": HEALTH_SCHEMA,
            **common,
            "name": "Chợ Đông Ba",
            "ts": at,
            "state": "degraded",
            "problems": ["blurred"],
            "since": since,
            "stream": {
                "codec": "h264",
                "width": 1920,
                "height": 1080,
                "fps": 14.9,
                "nominal_fps": 15.0,
                "bitrate_kbps": 2011.4,
                "gop_s": 2.0,
                "last_packet_ts": at,
            },
            "uptime": {"window_s": 86400.0, "online_ratio": 0.99213},
            "reconnects": 1,
        }
    )
    changed = StateChanged.model_validate(
        {
            "schema": EVENT_SCHEMA,
            "id": "0193a1f2c4d84e7b9a51",
            **common,
            "ts": since,
            "type": "state_changed",
            "from": "online",
            "to": "offline",
            "problems": ["unreachable"],
            "since": since,
            "from_since": "2026-12-02T22:40:03.118Z",
            "from_problems": [],
            "detail": "no route to the camera (192.168.10.21:554)",
        }
    )
    seen = Detection.model_validate(
        {
            "schema": EVENT_SCHEMA,
            "id": "0193a1f9e07c4b21b3c2",
            **common,
            "ts": at,
            "type": "detection_started",
            "label": "person",
            "score": 0.83,
            "box": [0.41, 0.22, 0.52, 0.71],
            "zones": ["cong-truoc"],
            "track_id": 17,
            "snapshot": "0193a1f9e07c4b21b3c2",
            "first_seen": "2026-12-03T08:15:29.750Z",
            "last_seen": at,
            "hits": 3,
        }
    )
    status = AgentStatus.model_validate(
        {
            "schema": AGENT_SCHEMA,
            "ward": "phuong-1",
            "ts": at,
            "state": "offline",
            "reason": "lost",
            "version": "0.1.0",
            "cameras": ["cho-dong-ba", "cau-truong-tien"],
            "started_at": "2026-12-01T01:00:00.000Z",
            "problems": [],
            "hostname": "ubnd-phuong-1",
            "seq": 3,
        }
    )
    stats = Stats.model_validate(
        {
            "schema": STATS_SCHEMA,
            "ward": "phuong-1",
            "ts": at,
            "uptime_s": 198930.0,
            "cpu_s": 51230.4,
            "cpu_percent": 31.2,
            "rss_bytes": 271581184,
            "threads": 41,
            "fds": 88,
            "outbox": {"pending": 0, "inflight": 0, "dropped": 0, "sent": 1822},
            "cameras": {"cho-dong-ba": {"state": "degraded", "fps": 14.9, "bitrate_kbps": 2011.4, "reconnects": 1}},
            "detector": None,
        }
    )
    named = [("health", health), ("state_changed", changed), ("detection_started", seen)]
    named += [("last_will", status), ("stats", stats)]
    out = {n: to_wire(m) for n, m in named}
    return {
        "health": [{"name": "health", "payload": out["health"]}],
        "events": [{"name": n, "payload": out[n]} for n in ("state_changed", "detection_started")],
        "status": [{"name": "last_will", "payload": out["last_will"]}],
        "stats": [{"name": "stats", "payload": out["stats"]}],
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole MQTT contract, as one ward agent publishes it."""
    examples = _examples()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for ch in CHANNELS:
        params = [p for p in PARAMETERS if p == "prefix" or "{" + p + "}" in ch.address]
        if ch.schema is None:
            payload: dict[str, Any] = {"type": "string", "format": "binary", "description": "a JPEG picture"}
        else:
            payload = {"$ref": f"#/components/schemas/{COMPONENT_OF[ch.schema]}"}
        message: dict[str, Any] = {
            "name": ch.kind,
            "title": ch.schema or "JPEG snapshot",
            "contentType": ch.content_type,
            "payload": payload,
        }
        if ch.kind in examples:
            message["examples"] = examples[ch.kind]
        messages[ch.kind] = message
        channels[ch.kind] = {
            "address": "{prefix}/" + ch.address,
            "description": ch.summary,
            "parameters": {p: {"$ref": f"#/components/parameters/{p}"} for p in params},
            "messages": {ch.kind: {"$ref": f"#/components/messages/{ch.kind}"}},
        }
        operations[f"send_{ch.kind}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{ch.kind}"},
            "summary": f"a ward agent publishes {ch.kind} (QoS {ch.qos}, {'' if ch.retain else 'not '}retained)",
            "messages": [{"$ref": f"#/channels/{ch.kind}/messages/{ch.kind}"}],
            "bindings": {"mqtt": {"qos": ch.qos, "retain": ch.retain, "bindingVersion": MQTT_BINDING}},
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:camwatch:mqtt-contract:1",
        "info": {
            "title": "camwatch MQTT contract",
            "version": "1",
            "description": (
                "What every ward agent publishes to the shared broker, and what the center and the center's other "
                "systems subscribe to. Version 1: fields may be added to a payload, never removed or changed in "
                "meaning; a reader ignores fields it does not know. Timestamps are RFC 3339, UTC, milliseconds. "
                "Each agent connects with a last will on its status topic (an offline status, reason lost, "
                "retained), so a ward that drops off the network is known as gone within ~1.5 keepalives."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "{host}:{port}",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "the center's Mosquitto (MQTT 5; 3.1.1 is accepted from agents set to it)",
                "variables": {
                    "host": {"default": "127.0.0.1", "description": "[mqtt] host"},
                    "port": {"default": "1883", "examples": ["1883", "8883"], "description": "8883 for TLS"},
                },
                "security": [
                    {"$ref": "#/components/securitySchemes/password"},
                    {"$ref": "#/components/securitySchemes/certificate"},
                ],
                "bindings": {
                    "mqtt": {
                        "cleanSession": True,
                        "keepAlive": 15,
                        "lastWill": {
                            "topic": f"{{prefix}}/{{ward}}/{AGENT}/status",
                            "qos": 1,
                            "retain": True,
                            "message": "an agent status: state offline, reason lost, the connection's seq",
                        },
                        "bindingVersion": MQTT_BINDING,
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _components_schemas(),
            "messages": messages,
            "parameters": {p: {"description": d} for p, d in PARAMETERS.items()},
            "securitySchemes": {
                "password": {"type": "userPassword", "description": "one broker user per ward"},
                "certificate": {"type": "X509", "description": "a client certificate per ward (TLS)"},
            },
        },
    }


# -- files -------------------------------------------------------------------------------------------------------


def documents() -> dict[Path, str]:
    """Every generated file and its text."""

    def text(doc: dict[str, Any]) -> str:
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    out = {HERE / "schemas" / file: text(json_schema(name)) for name, file in SCHEMAS.items()}
    out[ASYNCAPI_FILE] = text(asyncapi())
    return out


def stale() -> list[Path]:
    """The committed files that differ from what the models and channels generate."""
    return [p for p, t in documents().items() if not p.exists() or p.read_text(encoding="utf-8") != t]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m contract.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only say whether the committed files are up to date")
    args = ap.parse_args(argv)
    if args.check:
        old = stale()
        for path in old:
            print(f"{path}: differs from what contract.payloads generates (run python -m contract.generate)")
        return 1 if old else 0
    for path, body in documents().items():
        path.write_text(body, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
