"""The contract package: topics and their parser, and the vocabulary the JSON Schemas spell out."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.client import topic_matches_sub

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


def enum_of(node: dict[str, Any], *path: str) -> list[str]:
    for key in path:
        node = node[key]
    return list(node["enum"])


def test_the_vocabulary_is_what_the_json_schemas_spell_out() -> None:
    health, event, agent = schema(HEALTH_SCHEMA), schema(EVENT_SCHEMA), schema(AGENT_SCHEMA)
    assert set(enum_of(health, "properties", "state")) == set(STATES)
    assert enum_of(health, "properties", "problems", "items") == list(CAMERA_PROBLEMS)
    assert enum_of(event, "properties", "type") == list(EVENT_TYPES)
    assert set(enum_of(event, "properties", "to")) == set(STATES)
    assert enum_of(agent, "properties", "state") == list(AGENT_STATES)
    assert enum_of(agent, "properties", "reason") == list(AGENT_OFFLINE_REASONS)
    # One severity order, every state in it: down, nobody can vouch, a problem, fine.
    assert sorted(STATES, key=SEVERITY.__getitem__) == ["offline", "unknown", "degraded", "online"]
