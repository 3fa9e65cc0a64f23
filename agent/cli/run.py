"""``camwatch run --config PATH``: the ward agent, until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from agent.config import load_config
from agent.errors import DetectorError
from agent.runtime import Agent
from agent.sysinfo import settle_process
from common.errors import ConfigError
from common.i18n import _
from common.logs import setup_logging
from common.notify import stop_on_signals
from common.redact import redact


def cmd_run(path: str) -> int:
    settle_process()  # before any thread starts
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(_("{path}: the agent does not start; fix these first:").format(path=path), file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return 1
    setup_logging(config.log_level)
    try:
        agent = Agent(config)
    except DetectorError as exc:  # only when [detection] required = true
        print(_("{path}: the agent does not start: {why}").format(path=path, why=redact(str(exc))), file=sys.stderr)
        print(
            "  " + _("(detection.required = true: set it to false to watch health without detection)"), file=sys.stderr
        )
        return 1

    stop_on_signals(agent.stop)
    agent.run()
    return 0
