"""Event ids: unique per event, so that a receiver drops the copies a resend brings (QoS 1 is at least once)."""

from __future__ import annotations

import uuid


def new_event_id() -> str:
    """A unique event id (32 hex digits)."""
    return uuid.uuid4().hex
