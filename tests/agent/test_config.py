from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import ROOT

from agent.config import load_config, parse_config
from common.errors import ConfigError


def problems_of(raw: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env=env or {})
    return info.value.problems


def test_example_config_is_valid() -> None:
    config = load_config(
        ROOT / "config" / "ward.example.toml",
        env={"CAMWATCH_MQTT_USER": "ward1", "CAM01_PASS": "x1", "CAM02_PASS": "x2"},
    )
    assert config.ward == "thong-nhat"
    assert config.cameras[0].name == "Ngã tư Lê Duẩn"
    assert config.health.offline_after_s == 5


def test_minimal_config_has_defaults() -> None:
    config = parse_config({"ward": "w1", "cameras": [{"id": "c1", "url": "rtsp://10.0.0.1/x"}]})
    assert config.mqtt.port == 1883
    assert config.mqtt.topic_prefix == "camwatch"
    assert config.health.heartbeat_s == 30
    assert config.stream.transport == "tcp"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"ward": "Thong Nhat"}, "ward: must match [a-z0-9_-]+"),
        ({"ward": "w", "wardd": 1}, "wardd: unknown key"),
        ({"ward": "w", "mqtt": {"prot": 1}}, "mqtt.prot: unknown key"),
        ({"ward": "w", "mqtt": {"port": 70000}}, "mqtt.port: Input should be less than or equal to 65535"),
        ({"ward": "w", "health": {"offline_after_s": 0}}, "health.offline_after_s: Input should be greater than 0"),
        ({"ward": "w", "cameras": [{"id": "c", "url": "http://h/x"}]}, "cameras[0].url: must start with rtsp://"),
        ({"ward": "w", "cameras": [{"id": "c", "url": "rtsp:///x"}]}, "cameras[0].url: has no host"),
        ({"ward": "w", "cameras": [{"id": "C 1", "url": "rtsp://h/x"}]}, "cameras[0].id: must match"),
        ({"ward": "w", "cameras": [{"url": "rtsp://h/x"}]}, "cameras[0].id: required key is missing"),
        ({"ward": "w", "mqtt": {"password": "p"}}, "mqtt: Value error, password is set but username is not"),
        ({}, "ward: required key is missing"),
        (
            {"ward": "w", "detection": {"plausible": {"person": {"min_height": 2}}}},
            "detection.plausible.person.min_height: Input should be less than or equal to 1",
        ),
        (
            {"ward": "w", "detection": {"labels": ["car"], "plausible": {"person": {}}}},
            "detection: Value error, plausible: 'person' not in labels",
        ),
    ],
)
def test_each_mistake_is_named_with_its_key(raw: dict[str, Any], expected: str) -> None:
    problems = problems_of(raw)
    key, _, message = expected.partition(": ")
    message = message.removeprefix("Value error, ")
    assert any(p.startswith(key + ":") and message in p for p in problems), problems


def test_plausible_boxes_per_label_are_configurable() -> None:
    raw = {"ward": "w", "detection": {"plausible": {"person": {"min_height": 0.06, "min_aspect": 1.2}}}}
    p = parse_config(raw).detection.plausible["person"]
    assert (p.min_height, p.min_aspect, p.max_aspect) == (0.06, 1.2, 100.0)


def test_all_problems_reported_at_once() -> None:
    raw = {
        "ward": "BAD",
        "mqtt": {"portt": 1},
        "cameras": [
            {"id": "cam-01", "url": "rtsp://h/1"},
            {"id": "cam-01", "url": "rtsp://h/2"},
            {"id": "cam-03", "url": "ftp://h/3"},
            {"id": "cam-04", "url": "rtsp://a:${MISSING}@h/4"},
        ],
    }
    problems = problems_of(raw)
    joined = "\n".join(problems)
    assert "ward:" in joined
    assert "mqtt.portt: unknown key" in joined
    assert "cameras[1].id: duplicate camera id 'cam-01' (also cameras[0])" in joined
    assert "cameras[2].url:" in joined
    assert "cameras[3].url: environment variable MISSING is not set" in joined
    assert len(problems) == 5


def test_duplicate_ids_alone() -> None:
    problems = problems_of(
        {"ward": "w", "cameras": [{"id": "a", "url": "rtsp://h/1"}, {"id": "a", "url": "rtsp://h/2"}]}
    )
    assert problems == ["cameras[1].id: duplicate camera id 'a' (also cameras[0])"]


def test_env_and_file_secrets(tmp_path: Path) -> None:
    pw = tmp_path / "mqtt.pass"
    pw.write_text("s3cr3t-from-file\n")
    config = parse_config(
        {
            "ward": "w",
            "mqtt": {"username": "${MQTT_USER}", "password_file": str(pw)},
            "cameras": [{"id": "c", "url": "rtsp://admin:${CAM_PASS}@10.0.0.11:554/ch1"}],
        },
        env={"MQTT_USER": "ward-w", "CAM_PASS": "p@ss:w/rd"},
    )
    assert config.mqtt.username is not None and config.mqtt.username.get_secret_value() == "ward-w"
    assert config.mqtt.password is not None and config.mqtt.password.get_secret_value() == "s3cr3t-from-file"
    assert "s3cr3t" not in repr(config)


def test_camera_password_key_is_url_encoded_into_url() -> None:
    config = parse_config(
        {"ward": "w", "cameras": [{"id": "c", "url": "rtsp://admin@10.0.0.11/ch1", "password": "p@ss:w/rd"}]}
    )
    assert config.cameras[0].stream_url == "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.11/ch1"
    assert "p@ss" not in repr(config.cameras[0])


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    problems = problems_of({"ward": "w", "mqtt": {"username": "u", "password_file": str(tmp_path / "nope")}})
    assert problems == [f"mqtt.password_file: cannot read {tmp_path / 'nope'}: No such file or directory"]


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "ward.toml"
    p.write_text('ward = "w"\n[mqtt\nhost = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert "not valid TOML" in info.value.problems[0] and "line 2" in info.value.problems[0]


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config("/nonexistent/ward.toml")


def test_passwords_from_anywhere_are_redacted_but_user_names_are_not() -> None:
    from common.redact import redact

    parse_config(
        {
            "ward": "w",
            "mqtt": {"username": "${MQTT_USER}", "password": "${MQTT_PASS}"},
            "cameras": [
                {"id": "a", "url": "rtsp://admin:${CAM_PASS}@10.0.0.1/x"},
                {"id": "b", "url": "rtsp://admin:Literal-pw-77@10.0.0.2/x"},
            ],
        },
        env={"MQTT_USER": "ward-seven", "MQTT_PASS": "Mq-pass-55", "CAM_PASS": "c@m pass/66"},
    )
    text = "ward-seven Mq-pass-55 c@m pass/66 c%40m%20pass%2F66 Literal-pw-77"
    assert redact(text) == "ward-seven *** *** *** ***"


def test_image_check_overrides_and_masks() -> None:
    config = parse_config(
        {
            "ward": "w",
            "health": {"frozen_after_s": 20},
            "cameras": [
                {
                    "id": "c",
                    "url": "rtsp://h/x",
                    "health": {"frozen_after_s": 60, "image_checks": True},
                    "masks": [[[0, 0], [0.3, 0], [0.3, 0.1]]],
                }
            ],
        }
    )
    cam = config.cameras[0]
    assert cam.health is not None
    merged = cam.health.merged(config.health)
    assert merged.frozen_after_s == 60 and merged.black_after_s == 10
    assert cam.masks == [[(0.0, 0.0), (0.3, 0.0), (0.3, 0.1)]]


def test_bad_masks_are_named() -> None:
    problems = problems_of(
        {
            "ward": "w",
            "cameras": [{"id": "c", "url": "rtsp://h/x", "masks": [[[0, 0], [1.5, 0], [0, 1]], [[0, 0], [1, 1]]]}],
        }
    )
    assert any(p.startswith("cameras[0].masks[0][1][0]:") for p in problems), problems
    assert any(p.startswith("cameras[0].masks[1]:") for p in problems), problems
