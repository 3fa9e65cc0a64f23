"""Camera health: debounced problems, the online/degraded/offline state machine, uptime, image checks."""

from agent.health.debounce import Debounce
from agent.health.state import Change, HealthMachine, Thresholds, Verdict
from agent.health.uptime import UptimeTracker

__all__ = ["Change", "Debounce", "HealthMachine", "Thresholds", "UptimeTracker", "Verdict"]
