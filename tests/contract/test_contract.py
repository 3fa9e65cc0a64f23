"""The contract package: topics and their parser, and the vocabulary the JSON Schemas spell out."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from paho.mqtt.client import topic_matches_sub
from pydantic import ValidationError
from support import ROOT

from contract.generate import ASYNCAPI_FILE, stale
from contract.payloads import ADAPTERS, Health
from contract.schemas import schema
from contract.topics import NotOurs, Topic, Topics, center_subscriptions, health_filter, parse_topic
from contract.vocab import (
    AGENT_OFFLINE_REASONS,
    AGENT_SCHEMA,
    AGENT_STATES,
    CAMERA_PROBLEMS,
    EVENT_SCHEMA,
    EVENT_TYPES,
    HEALTH_SCHEMA,
    SEVERITY,
    STATES,
)

ASYNCAPI_SPEC = ROOT / ".cache" / "asyncapi" / "3.0.0.json"


@pytest.mark.parametrize("prefix", ["camwatch", "city/camwatch"])
def test_every_topic_an_agent_publishes_parses_back_and_the_center_subscribes_to_it(prefix: str) -> None:
    t = Topics(prefix, "p1")
    cases = {
        t.agent_status: Topic("p1", None, "status"),
        t.agent_stats: Topic("p1", None, "stats"),
        t.health("cam-01"): Topic("p1", "cam-01", "health"),
        t.events("cam-01"): Topic("p1", "cam-01", "events"),
        t.snapshot("cam-01", "e1"): Topic("p1", "cam-01", "snapshot", "e1"),
    }
    subscriptions = center_subscriptions(prefix)
    for topic, parsed in cases.items():
        assert parse_topic(topic, prefix) == parsed
        matching = [qos for sub, qos in subscriptions if topic_matches_sub(sub, topic)]
        assert matching == [0 if parsed.kind == "stats" else 1], topic
    assert topic_matches_sub(health_filter(prefix), t.health("cam-01"))
    assert not topic_matches_sub(health_filter(prefix, "p2"), t.health("cam-01"))


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("other/p1/cam/health", "is not under camwatch/"),
        ("camwatch/p1/cam", "is not ward/camera/kind"),
        ("camwatch/p1/cam/health/extra", "is not ward/camera/kind"),
        ("camwatch//cam/health", "is not ward/camera/kind"),
        ("camwatch/p1/cam/bogus", "unknown message kind 'bogus'"),
        ("camwatch/p1/cam/snapshot/", "is not ward/camera/kind"),
    ],
)
def test_a_topic_the_contract_does_not_name_is_refused_saying_why(topic: str, why: str) -> None:
    with pytest.raises(NotOurs, match=why):
        parse_topic(topic, "camwatch")


def enums(node: Any, key: str) -> set[str]:
    """Every value a property named ``key`` may take anywhere in a schema (its enums and consts)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict):
                found |= set(v.get("enum", [])) | ({v["const"]} if "const" in v else set())
                found |= {x for alt in v.get("anyOf", []) for x in alt.get("enum", [])}
            found |= enums(v, key)
    elif isinstance(node, list):
        for v in node:
            found |= enums(v, key)
    return found


def test_the_vocabulary_is_what_the_json_schemas_spell_out() -> None:
    health, event, agent = schema(HEALTH_SCHEMA), schema(EVENT_SCHEMA), schema(AGENT_SCHEMA)
    assert enums(health, "state") == set(STATES)
    assert health["properties"]["problems"]["items"]["enum"] == list(CAMERA_PROBLEMS)
    assert enums(event, "type") == set(EVENT_TYPES)
    assert enums(event, "to") == enums(event, "from") == set(STATES)
    assert enums(agent, "state") == set(AGENT_STATES)
    assert enums(agent, "reason") == set(AGENT_OFFLINE_REASONS)
    # One severity order, every state in it: down, nobody can vouch, a problem, fine.
    assert sorted(STATES, key=SEVERITY.__getitem__) == ["offline", "unknown", "degraded", "online"]


def test_the_committed_schemas_and_asyncapi_document_are_what_the_models_generate() -> None:
    """Change a model or a channel, then run ``python -m contract.generate``: this fails until you do."""
    assert [p.name for p in stale()] == []


def asyncapi_spec() -> dict[str, Any]:
    if not ASYNCAPI_SPEC.exists():
        pytest.fail(f"{ASYNCAPI_SPEC} is missing: scripts/setup.sh dev fetches it (scripts/fetch_asyncapi_spec.py)")
    loaded: dict[str, Any] = json.loads(ASYNCAPI_SPEC.read_text(encoding="utf-8"))
    return loaded


def local_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        here = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return here + [r for v in node.values() for r in local_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in local_refs(v)]
    return []


def test_the_asyncapi_document_is_valid_asyncapi_3_and_names_every_topic() -> None:
    doc = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(asyncapi_spec()).validate(doc)
    for ref in local_refs(doc):  # the AsyncAPI schema cannot see whether a $ref points anywhere
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    # Every channel is a topic the agent publishes, at the QoS and retain flag it publishes it with.
    t = Topics("{prefix}", "{ward}")
    addresses = {t.health("{camera}"), t.events("{camera}"), t.agent_status, t.agent_stats}
    addresses.add(t.snapshot("{camera}", "{event_id}"))
    assert {c["address"] for c in doc["channels"].values()} == addresses
    flags = {op["channel"]["$ref"].split("/")[-1]: op["bindings"]["mqtt"] for op in doc["operations"].values()}
    assert {k: (f["qos"], f["retain"]) for k, f in flags.items()} == {
        "health": (1, True),
        "events": (1, False),
        "status": (1, True),
        "snapshot": (1, False),
        "stats": (0, False),
    }
    will = doc["servers"]["broker"]["bindings"]["mqtt"]["lastWill"]
    assert (will["topic"], will["qos"], will["retain"]) == (t.agent_status, 1, True)
    # Its examples are payloads the models take and the standalone schemas accept.
    for message in doc["components"]["messages"].values():
        for example in message.get("examples", []):
            kind = example["payload"]["schema"]
            ADAPTERS[kind].validate_json(json.dumps(example["payload"]))
            jsonschema.validate(example["payload"], schema(kind))


OLDER_HEALTH: dict[str, Any] = {  # as an agent of an earlier release sent it: no name, nominal_fps, gop_s or detail
    "schema": HEALTH_SCHEMA,
    "ward": "p1",
    "camera": "c1",
    "ts": "2026-01-02T03:04:05.006Z",
    "state": "offline",
    "problems": ["unreachable"],
    "since": "2026-01-02T03:00:00.000Z",
    "stream": {"codec": None, "width": None, "height": None, "fps": None, "bitrate_kbps": None, "last_packet_ts": None},
    "uptime": {"window_s": 86400, "online_ratio": None},
    "reconnects": 0,
    "a_field_of_a_newer_agent": {"ignored": True},
}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"name": "Cổng trước", "detail": "no route", "stream": {**OLDER_HEALTH["stream"], "gop_s": None}}, True),
        ({"state": "sleeping"}, False),
        ({"problems": ["on_fire"]}, False),
        ({"ts": "2026-01-02 03:04:05"}, False),
        ({"ward": "Phường 1"}, False),
        ({"reconnects": "0"}, False),  # no "0" for 0: strict
        ({"reconnects": -1}, False),
        ({"uptime": {"window_s": 60, "online_ratio": 1.5}}, False),
        ({"schema": "camwatch.health/2"}, False),
    ],
)
def test_the_models_and_the_json_schemas_take_and_refuse_the_same_payloads(
    change: dict[str, Any], accepted: bool
) -> None:
    payload = {**OLDER_HEALTH, **change}
    by_schema = jsonschema.Draft202012Validator(schema(HEALTH_SCHEMA)).is_valid(payload)
    try:
        Health.model_validate_json(json.dumps(payload))
        by_model = True
    except ValidationError:
        by_model = False
    assert (by_schema, by_model) == (accepted, accepted)


def test_a_null_where_the_agent_leaves_a_field_out_is_refused_by_the_schema_and_read_as_left_out() -> None:
    payload = {**OLDER_HEALTH, "detail": None}
    assert not jsonschema.Draft202012Validator(schema(HEALTH_SCHEMA)).is_valid(payload)  # what agents send
    assert Health.model_validate_json(json.dumps(payload)).detail is None  # what a reader tolerates
