"""``camwatch probe --brand``: the brand's paths tried on a real RTSP server, the advice, the block to paste."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import CAM_PASSWORD, CAM_USER, camwatch

from agent.cli.survey import Survey, advice, camera_id, config_block, password_variable, survey
from agent.sim.rtsp import RtspServer
from agent.stream.brands import BRANDS, split_host, stream_url

# A password that needs escaping in a URL, typed at the prompt (standard input when it is not a terminal).
TRICKY = "p@ss:w/rd#1"
QUICK = ("--seconds", "2", "--timeout", "8")


def main_and_sub(main_path: str, sub_path: str) -> dict[str, str]:
    return {
        main_path: "video:640x360@25,gop=50",
        sub_path: "video:320x240@10,gop=20",
    }


def test_hikvision_main_and_sub_found_measured_and_written_as_config(
    rtsp_factory: Callable[..., RtspServer], tmp_path: Path
) -> None:
    server = rtsp_factory(main_and_sub("Streaming/Channels/101", "Streaming/Channels/102"), password=TRICKY)
    r = camwatch("probe", "--brand", "hikvision", f"127.0.0.1:{server.port}", "--user", CAM_USER, *QUICK, stdin=TRICKY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert TRICKY not in r.stdout + r.stderr and "p%40ss" not in r.stdout + r.stderr
    assert "h264 640x360" in r.stdout and "h264 320x240" in r.stdout
    assert "detection: the substream (320x240)" in r.stdout
    block = r.stdout[r.stdout.index("[[cameras]]") :].split("\n\n")[0]
    assert 'password = "${CAM_127_0_0_1_PASS}"' in block
    # The block is a camera config the agent takes, its password from the environment.
    ward = tmp_path / "ward.toml"
    ward.write_text(f'ward = "w1"\nstate_dir = "{tmp_path}"\n[mqtt]\nhost = "127.0.0.1"\n\n{block}\n')
    check = camwatch("check-config", str(ward), env={"CAM_127_0_0_1_PASS": TRICKY})
    assert check.returncode == 0, check.stdout + check.stderr
    assert camwatch("check-config", str(ward)).returncode != 0  # and says so when the variable is missing


def test_dahua_subtypes_are_told_apart_and_reported_as_json(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory(main_and_sub("cam/realmonitor?channel=2&subtype=0", "cam/realmonitor?channel=2&subtype=1"))
    r = camwatch(
        "probe",
        "--brand",
        "kbvision",
        f"127.0.0.1:{server.port}",
        "--channel",
        "2",
        "--json",
        *QUICK,
        stdin=CAM_PASSWORD,
    )
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    streams = {s["role"]: s for s in found["streams"]}
    assert (streams["main"]["width"], streams["sub"]["width"]) == (640, 320)
    assert streams["main"]["gop_s"] == pytest.approx(2.0, abs=0.1)
    assert streams["sub"]["fps"] == pytest.approx(10, abs=1.5)
    assert "subtype=1" in found["config"] and "channel=2" in found["config"]
    assert found["password_variable"] == "CAM_127_0_0_1_CH2_PASS"
    assert CAM_PASSWORD not in r.stdout


def test_generic_finds_the_scheme_that_answers(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory(main_and_sub("h264/ch1/main/av_stream", "h264/ch1/sub/av_stream"))
    r = camwatch("probe", "--brand", "generic", f"127.0.0.1:{server.port}", "--json", *QUICK, stdin=CAM_PASSWORD)
    found = json.loads(r.stdout)
    tried = [(s["scheme"], s["role"], s.get("reason")) for s in found["streams"]]
    assert tried == [
        ("Hikvision", "main", "not_found"),
        ("Dahua", "main", "not_found"),
        ("Ezviz", "main", None),
        ("Ezviz", "sub", None),
    ]
    assert r.returncode == 0


def test_a_wrong_password_stops_at_once_and_says_so(rtsp_factory: Callable[..., RtspServer]) -> None:
    server = rtsp_factory(main_and_sub("Streaming/Channels/101", "Streaming/Channels/102"))
    r = camwatch("probe", "--brand", "generic", f"127.0.0.1:{server.port}", "--json", *QUICK, stdin="wrong")
    assert r.returncode == 2
    found = json.loads(r.stdout)
    assert [s["reason"] for s in found["streams"]] == ["auth_failed"]
    assert found["config"] is None
    assert found["advice"][0].startswith("no stream found: auth_failed")


def test_an_address_that_is_a_url_is_refused_with_the_reason() -> None:
    r = camwatch("probe", "--brand", "dahua", "rtsp://10.0.0.5/cam", stdin="")
    assert r.returncode == 2
    assert "not a URL" in r.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.5", ("10.0.0.5", 554)), ("10.0.0.5:8554", ("10.0.0.5", 8554)), ("[fe80::1]:10554", ("fe80::1", 10554))],
)
def test_split_host(text: str, expected: tuple[str, int]) -> None:
    assert split_host(text) == expected


@pytest.mark.parametrize("text", ["10.0.0.5:0", "10.0.0.5:http", "", "rtsp://x"])
def test_split_host_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        split_host(text)


def test_stream_url_escapes_credentials() -> None:
    assert stream_url("fe80::1", 554, "/x", "ad min", "a@b") == "rtsp://ad%20min:a%40b@[fe80::1]:554/x"
    assert stream_url("h", 10554, BRANDS["dahua"].schemes[0].path("sub", 3)).endswith(
        "/cam/realmonitor?channel=3&subtype=1"
    )


def _finding(role: str, **figures: Any) -> dict[str, Any]:
    base = {"ok": True, "codec": "h264", "width": 1920, "height": 1080, "fps": 25.0, "nominal_fps": 25.0}
    return base | {"gop_s": 2.0, "measured_s": 5.0, "role": role, "scheme": "Hikvision", "path": f"/{role}"} | figures


def test_advice_names_what_to_change_on_the_camera() -> None:
    found = Survey("hikvision", "10.0.0.5", 554, 1, "admin")
    found.streams = [
        _finding("main", gop_s=None, fps=9.0, codec="mjpeg"),
        _finding("sub", height=1080, width=1920, fps=25.0),
    ]
    said = "\n".join(advice(found))
    assert "substream is 1080 px high" in said
    assert "sends 25 fps" in said
    assert "mjpeg" in said
    assert "I-frame interval" in said
    assert "9 of its 25 fps" in said


def test_no_substream_means_detection_on_keyframes_and_no_detect_url() -> None:
    found = Survey("dahua", "10.0.0.5", 554, 1, "")
    found.streams = [_finding("main"), {"ok": False, "role": "sub", "reason": "not_found", "hint": "", "path": "/s"}]
    assert any("keyframes only" in line for line in advice(found))
    block = config_block(found, camera_id("10.0.0.5", 1))
    assert block is not None and "detect_url" not in block and "password" not in block


def test_survey_stops_at_an_unreachable_camera() -> None:
    calls: list[str] = []

    def prober(url: str) -> dict[str, Any]:
        calls.append(url)
        return {"ok": False, "reason": "unreachable", "hint": "", "detail": ""}

    found = survey(BRANDS["generic"], "10.0.0.5", 554, user="admin", password="x", prober=prober)
    assert len(calls) == 1 and found.found("main") is None
    assert password_variable("cam-10-0-0-5") == "CAM_10_0_0_5_PASS"


def test_a_refused_imou_reminds_where_its_password_is() -> None:
    found = Survey("imou", "10.0.0.5", 554, 1, "admin")
    found.streams = [{"ok": False, "role": "main", "reason": "auth_failed", "hint": "wrong user name or password"}]
    assert "safety code" in advice(found)[-1]
