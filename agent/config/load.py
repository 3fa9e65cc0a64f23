"""A ward agent's config file: read and validated as every camwatch config is (:mod:`common.config`), plus
what only the agent checks (duplicate camera ids) and the secrets it registers for redaction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.config.model import AgentConfig
from common.config import read_toml, validate_tree
from common.errors import ConfigError
from common.i18n import _
from common.redact import register_secret, register_url_secrets


def _duplicate_ids(raw: dict[str, Any]) -> list[str]:
    cameras = raw.get("cameras")
    if not isinstance(cameras, list):
        return []
    seen: dict[str, int] = {}
    problems = []
    for i, cam in enumerate(cameras):
        cam_id = cam.get("id") if isinstance(cam, dict) else None
        if not isinstance(cam_id, str):
            continue
        if cam_id in seen:
            problems.append(
                f"cameras[{i}].id: "
                + _("duplicate camera id {id!r} (also cameras[{other}])").format(id=cam_id, other=seen[cam_id])
            )
        seen.setdefault(cam_id, i)
    return problems


def parse_config(raw: dict[str, Any], env: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate an already parsed TOML tree into an :class:`AgentConfig`."""
    try:
        config = validate_tree(AgentConfig, raw, env)
    except ConfigError as exc:
        # Duplicate ids are checked on the raw tree too, so that they are
        # reported even when other camera entries have errors of their own.
        problems = _duplicate_ids(raw) + exc.problems
        raise ConfigError(list(dict.fromkeys(problems))) from None
    for secret in (config.mqtt.password, *(c.password for c in config.cameras)):
        if secret is not None:
            register_secret(secret.get_secret_value())
    for cam in config.cameras:
        for url in (cam.url, cam.detect_url):
            register_url_secrets(url)  # written literally in the file: mask them wherever they show up
    return config


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate a ward agent's TOML file; raise ConfigError listing every problem."""
    return parse_config(read_toml(path), env)
