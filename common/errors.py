"""The error base every camwatch error derives from, and the config error both sides raise."""

from __future__ import annotations


class CamwatchError(Exception):
    """Base of every error camwatch raises on purpose."""


class ConfigError(CamwatchError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
