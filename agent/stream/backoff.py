"""Capped exponential backoff with full jitter."""

from __future__ import annotations

import random


class Backoff:
    """Delays of about ``initial * 2**n``, capped at ``maximum``, with jitter.

    Jitter draws each delay from ``[delay/2, delay]`` so that a ward's cameras
    that fail together (a switch reboot) do not reconnect in lock-step.
    """

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
