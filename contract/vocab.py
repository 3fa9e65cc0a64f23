"""The words of the contract: states, problems, event types, payload schema names."""

from __future__ import annotations

from typing import Final, Literal, get_args

State = Literal["online", "degraded", "offline", "unknown"]
STATES: Final[tuple[State, ...]] = ("online", "degraded", "offline", "unknown")
UP_STATES: Final[tuple[State, ...]] = ("online", "degraded")  # the camera's video flows

# What an operator looks at first: a camera down, then one nobody can vouch for, then one with a problem,
# then the rest. Lists of cameras, the CLI's table and the center's pages sort by it.
SEVERITY: Final[dict[str, int]] = {"offline": 0, "unknown": 1, "degraded": 2, "online": 3}

AgentState = Literal["online", "offline"]
AGENT_STATES: Final[tuple[AgentState, ...]] = ("online", "offline")
AGENT_OFFLINE_REASONS: Final = ("lost", "shutdown")  # the last will, or a clean stop
AGENT_PROBLEMS: Final = (
    "detector_unavailable",
    "state_dir_unwritable",
    "outbox_overflow",
    "outbox_unwritable",
    "publish_refused",
    "overloaded",
)

# Why a camera is offline (health ``problems``; one at a time).
FailureReason = Literal["unreachable", "auth_failed", "not_found", "stalled", "no_video"]
# What is wrong with a camera whose video flows (health ``problems``; any of them): its stream, its picture.
StreamProblem = Literal["low_fps"]
ImageProblem = Literal["black", "frozen", "blurred", "covered", "moved"]
CameraProblem = Literal[FailureReason, StreamProblem, ImageProblem]
FAILURE_REASONS: Final[tuple[FailureReason, ...]] = get_args(FailureReason)
STREAM_PROBLEMS: Final[tuple[StreamProblem, ...]] = get_args(StreamProblem)
IMAGE_PROBLEMS: Final[tuple[ImageProblem, ...]] = get_args(ImageProblem)
CAMERA_PROBLEMS: Final[tuple[CameraProblem, ...]] = FAILURE_REASONS + STREAM_PROBLEMS + IMAGE_PROBLEMS

EVENT_TYPES: Final = ("state_changed", "problem_started", "problem_ended", "detection_started", "detection_ended")

HEALTH_SCHEMA: Final = "camwatch.health/1"
EVENT_SCHEMA: Final = "camwatch.event/1"
AGENT_SCHEMA: Final = "camwatch.agent/1"
STATS_SCHEMA: Final = "camwatch.stats/1"
