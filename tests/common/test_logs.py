"""Logs under systemd: each line carries its syslog priority for journald, and no time of its own; elsewhere
lines are plain and timed. The child's stderr is a real pipe whose device and inode are given as
``JOURNAL_STREAM``, as systemd gives them for the stream it connected."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support import ROOT, write_config

from agent.sim.rtsp import free_port

CHILD = """
import logging
from common.logs import setup_logging
setup_logging("debug")
logging.getLogger("agent.publish.mqtt").error("cannot connect to broker %s", "mqtt://w1:s3cret@10.0.0.9:1883")
logging.getLogger("agent.runtime").warning("agent overloaded")
logging.getLogger("agent.runtime").info("camera c1: online -> offline")
logging.getLogger("agent.stream").debug("probing")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("agent.runtime").exception("health loop failed; continuing")
"""
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def run_child(journal: str | None) -> list[str]:
    """The child's stderr lines; ``journal``: "pipe" for the pipe's own dev:inode, or a literal value."""
    read, write = os.pipe()
    st = os.fstat(write)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal is not None:
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}" if journal == "pipe" else journal
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, stderr=write)
    os.close(write)
    with os.fdopen(read, "r", encoding="utf-8") as out:
        text = out.read()
    assert proc.wait(30) == 0, text
    return text.splitlines()


def test_under_systemd_every_line_says_its_priority_and_no_time() -> None:
    lines = run_child("pipe")
    assert lines[0] == "<3>agent.publish.mqtt: cannot connect to broker mqtt://w1:***@10.0.0.9:1883"  # redacted
    assert lines[1:4] == [
        "<4>agent.runtime: agent overloaded",
        "<6>agent.runtime: camera c1: online -> offline",
        "<7>agent.stream: probing",
    ]
    trace = lines[4:]  # an exception's traceback: each line an error entry of its own
    assert trace[0] == "<3>agent.runtime: health loop failed; continuing" and len(trace) > 3
    assert all(line.startswith("<3>") for line in trace) and trace[-1] == "<3>ZeroDivisionError: division by zero"
    assert not [line for line in lines if TIMESTAMP.search(line)]


def test_elsewhere_lines_are_plain_and_timed() -> None:
    for journal in (None, "1:2"):  # no journal, or a journal stream that is not this stderr (inherited)
        lines = run_child(journal)
        assert TIMESTAMP.match(lines[0]) and "ERROR   agent.publish.mqtt: cannot connect" in lines[0]
        assert not [line for line in lines if line.startswith("<")]


def test_the_shipped_units_leave_stderr_to_the_journal_with_priority_prefixes() -> None:
    for unit in ("camwatch-agent.service", "camwatch-center.service"):
        text = (ROOT / "deploy" / unit).read_text(encoding="utf-8")
        assert "StandardError=" not in text or "StandardError=journal" in text, unit
        assert "SyslogLevelPrefix=no" not in text, unit


def test_the_agent_logs_a_broker_it_cannot_reach_as_an_error_entry(tmp_path: Path) -> None:
    """The real agent, a broker port nobody listens on: its error reaches journald at priority 3."""

    cfg = write_config(tmp_path / "ward.toml", "w1", free_port(), "camwatch", [])
    read, write = os.pipe()
    st = os.fstat(write)
    env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    cmd = [sys.executable, "-m", "agent.cli.main", "run", "--config", str(cfg)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=write, stdout=subprocess.DEVNULL)
    os.close(write)
    lines: list[str] = []
    with os.fdopen(read, "r", encoding="utf-8") as out:
        for line in out:
            lines.append(line.rstrip("\n"))
            if "cannot connect to broker" in line or len(lines) > 200:
                break
        proc.terminate()
        proc.wait(30)
    errors = [line for line in lines if "cannot connect to broker" in line]
    assert errors and errors[0].startswith("<3>agent.publish.mqtt: "), lines[-20:]
    assert not [line for line in lines if TIMESTAMP.search(line)]
