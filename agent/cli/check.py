"""``camwatch check-config PATH``."""

from __future__ import annotations

import sys

from agent.config import load_config
from agent.errors import ConfigError
from agent.redact import redact


def cmd_check(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' if n != 1 else ''}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return 1
    enabled = len(config.enabled_cameras)
    print(
        f"{path}: OK: ward {config.ward}, {len(config.cameras)} camera(s) ({enabled} enabled), "
        f"broker {config.mqtt.host}:{config.mqtt.port}{' (TLS)' if config.mqtt.use_tls else ''}"
    )
    return 0
