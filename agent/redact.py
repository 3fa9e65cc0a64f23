"""The one place where secrets are hidden before anything is logged, published or shown.

Every string that may carry a URL or a secret goes through :func:`redact`:
passwords in URLs become ``***`` and every secret registered with
:func:`register_secret` (camera and MQTT passwords read from config, env or
files) is masked wherever it appears, even outside a URL (FFmpeg error
texts, exception messages).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, unquote

MASK = "***"

# scheme://user:password@  ->  scheme://user:***@ ; the password part runs to
# the last '@' before the host so that an unencoded '@' in it is covered too.
_URL_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s'\"]*):(?P<pw>[^\s'\"/]*)@(?=[^@\s/]*(?:[/\s'\"]|$))"
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


def redact(text: object) -> str:
    """Return ``text`` as a string with URL passwords and known secrets masked."""
    s = str(text)
    s = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", s)
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
