from __future__ import annotations

import logging

import pytest

from common.redact import RedactingFilter, redact, register_secret, register_url_secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.1:554/ch1", "rtsp://admin:***@10.0.0.1:554/ch1"),
        ("rtsps://admin:s3cret@cam.local/ch1", "rtsps://admin:***@cam.local/ch1"),
        ("mqtt://ward:pw@broker:1883", "mqtt://ward:***@broker:1883"),
        ("error: 'rtsp://u:p@ss:w@rd@10.0.0.1/x'", "error: 'rtsp://u:***@10.0.0.1/x'"),
        ("rtsp://10.0.0.1/ch1", "rtsp://10.0.0.1/ch1"),
        ("rtsp://admin@10.0.0.1/ch1", "rtsp://admin@10.0.0.1/ch1"),
        ("two: rtsp://a:b1@h1/x rtsp://c:d2@h2/y", "two: rtsp://a:***@h1/x rtsp://c:***@h2/y"),
        ("mail me at user@example.com", "mail me at user@example.com"),
        # Credentials in query strings, as some DVRs take them
        (
            "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=admin&password=Hx9!q",
            "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=admin&password=***",
        ),
        ("open 'rtsp://h/live?pwd=abc;x=1' failed", "open 'rtsp://h/live?pwd=***;x=1' failed"),
        ("http://h/snap.jpg?PassWord=a%20b&token=t0k#frag", "http://h/snap.jpg?PassWord=***&token=***#frag"),
        ("rtsp://h/live?channel=1&passive=2", "rtsp://h/live?channel=1&passive=2"),
        # Authorization headers
        ("Authorization: Basic YWRtaW46c2VjcmV0", "Authorization: Basic ***"),
        ("{'Authorization': 'Bearer eyJhbGciOi.x.y', 'Host': 'h'}", "{'Authorization': 'Bearer ***', 'Host': 'h'}"),
        (
            'Proxy-Authorization: Digest username="admin", response="6629fae4"\nnext line',
            "Proxy-Authorization: Digest ***\nnext line",
        ),
        ("authorization failed for user x", "authorization failed for user x"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_query_string_secrets_of_a_url_are_registered() -> None:
    register_url_secrets("rtsp://cam.local/live?user=admin&password=Qs-Canary-55&channel=1")
    assert redact("ffmpeg said: bad credential Qs-Canary-55") == "ffmpeg said: bad credential ***"
    assert "admin" in redact("user admin")  # a user name is not a secret


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret("Zebra-42-pass")
    assert redact("auth with Zebra-42-pass failed") == "auth with *** failed"
    assert redact("encoded Zebra-42-pass") == "encoded ***"
    register_secret("a/b@c")
    assert redact("url-encoded a%2Fb%40c here") == "url-encoded *** here"


def test_logging_filter_redacts_message_args_and_exceptions() -> None:
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "open %s failed", ("rtsp://u:topsecret@h/x",), None)
    try:
        raise RuntimeError("boom rtsp://u:topsecret@h/x")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    out = logging.Formatter().format(record)
    assert "topsecret" not in out
    assert "rtsp://u:***@h/x" in out
