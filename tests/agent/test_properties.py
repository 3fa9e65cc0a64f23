"""Property tests (hypothesis): config never crashes, payloads are always valid.

- Any TOML tree (right keys with wrong values, wrong keys, wrong shapes) and
  any file text give either a config or a ConfigError whose every problem
  names a key path — never another exception.
- Every payload builder gives JSON that the contract's schema accepts, for
  any values its inputs can take.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load_config, parse_config
from agent.detect.events import detection_payload
from agent.detect.tracker import Track
from agent.health.state import Change, Verdict
from agent.publish.payloads import (
    agent_payload,
    encode,
    event_payload,
    health_payload,
)
from agent.stream.stats import StreamSnapshot
from common.errors import ConfigError
from contract.schemas import schema

KEYS = {
    "": ["ward", "state_dir", "log_level", "mqtt", "health", "stream", "detection", "outbox", "cameras", "bogus"],
    "mqtt": ["host", "port", "username", "password", "password_file", "topic_prefix", "tls", "ca_file", "queue_max"],
    "health": ["offline_after_s", "heartbeat_s", "low_fps_ratio", "image_checks", "frozen_after_s", "wat"],
    "stream": ["transport", "open_timeout_s", "backoff_initial_s", "backoff_max_s"],
    "detection": ["enabled", "model", "detect_fps", "labels", "min_score", "min_hits", "queue_max"],
    "outbox": ["max_bytes", "max_age_s", "drain_per_s"],
    "camera": ["id", "name", "url", "detect_url", "password", "masks", "zones", "health", "transport", "extra"],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["rtsp://h/x", "rtsp://u:p@h:554/s", "file:///tmp/x.mp4", "w-1", "${NOPE}", "${HOME}", "tcp"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def table(section: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(KEYS[section]), values, max_size=6)


trees = st.fixed_dictionaries(
    {},
    optional={
        "ward": values | st.sampled_from(["w1", "Bad Ward"]),
        "mqtt": table("mqtt") | values,
        "health": table("health") | values,
        "stream": table("stream"),
        "detection": table("detection"),
        "outbox": table("outbox"),
        "cameras": st.lists(table("camera") | values, max_size=4) | values,
        "bogus": values,
    },
)

KEY = r'([\w-]+|"(?:[^"\\]|\\.)*")'  # a bare key, or a quoted one
PROBLEM = re.compile(rf"^(\(top level\)|{KEY}(\[\d+\])*(\.{KEY}(\[\d+\])*)*): .+", re.S)


def check_problems(exc: ConfigError) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert isinstance(problem, str) and PROBLEM.match(problem), problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_any_config_tree_gives_a_config_or_key_path_errors(raw: dict[str, Any]) -> None:
    try:
        parse_config(raw, env={"HOME": "/root"})
    except ConfigError as exc:
        check_problems(exc)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_file_text_gives_a_config_or_clear_errors(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "ward.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


# -- payloads ---------------------------------------------------------------------------

states = st.sampled_from(["unknown", "online", "degraded", "offline"])
problems = st.lists(st.sampled_from(["stalled", "black", "frozen", "low_fps", "unreachable"]), max_size=4, unique=True)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e12)
maybe = st.none() | floats
counts = st.integers(min_value=0, max_value=2**40)
mono = st.floats(min_value=0, max_value=1e7, allow_nan=False)


def valid(payload: dict[str, Any]) -> None:
    decoded = json.loads(encode(payload))  # what goes on the wire
    jsonschema.validate(decoded, schema(decoded["schema"]))


snapshots = st.builds(
    StreamSnapshot,
    codec=st.none() | st.sampled_from(["h264", "hevc"]),
    width=st.none() | st.integers(0, 10_000),
    height=st.none() | st.integers(0, 10_000),
    fps=maybe.map(lambda v: None if v is None else abs(v)),
    nominal_fps=maybe.map(lambda v: None if v is None else abs(v)),
    bitrate_kbps=maybe.map(lambda v: None if v is None else abs(v)),
    gop_s=maybe.map(lambda v: None if v is None else abs(v)),
    last_packet=st.none() | mono,
    reconnects=counts,
)


@settings(max_examples=200, deadline=None)
@given(
    states.filter(lambda s: s != "unknown"),
    problems,
    mono,
    st.text(max_size=40),
    snapshots,
    st.none() | st.floats(0, 1),
    st.text(max_size=20),
)
def test_health_payload_is_always_valid(
    state: Any, probs: list[str], since: float, detail: str, snap: StreamSnapshot, ratio: float | None, name: str
) -> None:
    valid(
        health_payload(
            ward="w",
            camera="c-1",
            name=name,
            verdict=Verdict(state, tuple(probs), since, detail),
            stream=snap,
            wall_of=lambda m: 1.7e9 + m,
            now_wall=1.7e9 + 5,
            uptime_window_s=86400,
            online_ratio=ratio,
        )
    )


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["state_changed", "problem_started", "problem_ended"]), states, states, problems, mono, st.text()
)
def test_event_payload_is_always_valid(kind: Any, a: Any, b: Any, probs: list[str], at: float, detail: str) -> None:
    change = Change(kind, at, a, b, probs[0] if probs else "black", tuple(probs), detail)
    valid(event_payload(ward="w", camera="c", change=change, wall=1.7e9 + at, since_wall=1.7e9))


boxes = st.tuples(floats, floats, floats, floats)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["detection_started", "detection_ended"]),
    boxes,
    st.floats(0, 1),
    st.integers(1, 10**9),
    st.lists(st.sampled_from(["gate", "crossing"]), unique=True),
    st.none() | st.just("a" * 32),
    st.integers(1, 10**6),
    mono,
)
def test_detection_payload_is_always_valid(
    kind: str, box: Any, score: float, track_id: int, zones: list[str], snap: str | None, hits: int, at: float
) -> None:
    track = Track(track_id, "person", box, score, at, at, hits=hits, zones=tuple(zones), best_score=score, best_box=box)
    payload = detection_payload(
        event_id="b" * 32,
        ward="w",
        camera="c",
        type=kind,
        track=track,
        snapshot=snap,
        wall_of=lambda m: 1.7e9 + m,
        now=at,
        started_id="c" * 32 if kind == "detection_ended" else None,
    )
    valid(payload)
    assert all(0 <= v <= 1 and math.isfinite(v) for v in payload["box"])


statuses = st.sampled_from([("online", None), ("offline", "lost"), ("offline", "shutdown")])


@settings(max_examples=100, deadline=None)
@given(statuses, st.lists(st.text(max_size=10)))
def test_agent_payload_is_always_valid(status: tuple[str, str | None], probs: list[str]) -> None:
    state, reason = status  # an offline status always says why (the contract)
    valid(
        agent_payload(
            ward="w",
            state=state,
            version="0.1",
            cameras=["a", "b"],
            started_at=1.7e9,
            now_wall=1.7e9 + 1,
            problems=probs,
            reason=reason,
            hostname="pc",
        )
    )
