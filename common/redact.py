"""The one place where secrets are hidden before anything is logged, published or shown.

Every string that may carry a URL or a secret goes through :func:`redact`:
passwords in URLs become ``***`` (in the user part, and in query strings as
some DVRs take them: ``?user=admin&password=...``), so do the credentials of
``Authorization`` headers, and every secret registered with
:func:`register_secret` (camera and MQTT passwords read from config, env or
files) is masked wherever it appears, even outside a URL (FFmpeg error
texts, exception messages).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"

# scheme://user:password@  ->  scheme://user:***@ ; the password part runs to
# the last '@' before the host so that an unencoded '@' in it is covered too.
_URL_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s'\"]*):(?P<pw>[^\s'\"/]*)@(?=[^@\s/]*(?:[/\s'\"]|$))"
)

# Query-string parameters that carry a secret: ...?user=admin&password=xyz -> password=***
SECRET_PARAMS = (
    "password|passwd|pass|pwd|psw|passphrase|secret|token|access_token|auth|auth_token|apikey|api_key|key|sig|signature"
)
_QUERY_SECRET = re.compile(rf"(?i)([?&;](?:{SECRET_PARAMS})=)[^&;#\s'\"<>]*")
_SECRET_PARAM = re.compile(rf"(?i)^(?:{SECRET_PARAMS})$")
# Authorization: Basic dXNlcjpwYXNz / "Authorization": "Bearer ..." / authorization=Digest username="a", response="..."
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*)([\"'])?((?:basic|bearer|digest|token|negotiate)\s+)?"
    r"(?(2)[^\r\n\"']+|[^\r\n]+)"  # a quoted value to its quote, a header line to its end
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it anywhere it appears."""
    if not secret or len(secret) < 3:
        # Masking 1-2 character strings would shred ordinary text; such a
        # password still never appears in URLs, which are masked by shape.
        return
    with _lock:
        _secrets.add(secret)
        _secrets.add(quote(secret, safe=""))
        _secrets.add(unquote(secret))


def register_url_secrets(url: str | None) -> None:
    """Register the secrets a URL carries: its password and its secret query parameters."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        register_secret(unquote(password))
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_PARAM.match(name):
            register_secret(value)


def redact(text: object) -> str:
    """Return ``text`` as a string with URL passwords, query-string and header credentials, and known secrets
    masked."""
    s = str(text)
    s = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", s)
    s = _QUERY_SECRET.sub(lambda m: f"{m[1]}{MASK}", s)
    s = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2] or ''}{m[3] or ''}{MASK}", s)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in s:
            s = s.replace(secret, MASK)
    return s


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record once and redacts the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
