"""Logging set-up for the CLI: one stderr handler, every record redacted; journald's own format under systemd.

Under systemd (``StandardError=journal``, the default for services) the
service manager sets ``JOURNAL_STREAM`` to the device and inode of the
stream it connected to stderr. When stderr is that stream, every line
starts with its syslog priority in angle brackets (``<3>`` for an error),
which journald takes as the entry's priority (``SyslogLevelPrefix=``, on by
default), and carries no time of its own (journald stamps each entry):
``journalctl -p err -u camwatch-agent`` then shows the errors. Anywhere
else (a terminal, a pipe, a container's log) lines are plain and timed.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final, TextIO

from common.redact import RedactingFilter

# syslog(3) priorities, as sd-daemon(3)'s SD_ERR... prefixes spell them
PRIORITY: Final = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
PLAIN: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def priority_of(level: int) -> int:
    """The syslog priority of a logging level (levels between the named ones take the next lower one's)."""
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if level >= threshold:
            return PRIORITY[threshold]
    return PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``, every line of it prefixed (journald makes each line an entry)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority_of(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def to_journal(stream: TextIO, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether ``stream`` is the journal stream the service manager set up (``JOURNAL_STREAM=dev:inode``)."""
    wanted = environ.get("JOURNAL_STREAM", "")
    if not wanted:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a file (a test's StringIO)
        return False
    return wanted == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if to_journal(sys.stderr):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(PLAIN, "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("agent.publish.paho").setLevel(logging.WARNING)
