"""Outbound events to the orchestrator: signed HTTP POSTs and a Redis stream.

Every status change writes an event to `outbox_events` in its own transaction, with one
`deliver` job per configured URL (and a `stream` job when Redis is configured). The worker
delivers them at least once; receivers deduplicate by event id (docs/webhooks.md).

The signature follows Stripe's scheme: `Mmo-Signature: t=<unix time>,v1=<hex HMAC-SHA256
of "<t>.<body>">`, with one `v1` per secret in MMO_EVENT_SECRETS so that a secret can be
rotated without losing events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Mmo-Signature"

# Seconds to wait before each retry: about 3 days in all, like Stripe's live schedule.
DELIVERY_SCHEDULE: tuple[float, ...] = (
    60,
    300,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
    12 * 3600,
)


def event_body(event: Any) -> bytes:
    payload = event["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    body = {
        "id": str(event["id"]),
        "type": event["type"],
        "created_at": event["created_at"].isoformat(),
        "payment": payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, secrets: tuple[str, ...], timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


def verify(
    body: bytes, header: str, secret: str, tolerance: float = 300, now: float | None = None
) -> bool:
    """What a receiver does (docs/webhooks.md): check the time, then any `v1` in constant time."""
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in items if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    t = int(timestamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")


def next_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones; None when giving up."""
    if attempts - 1 < len(DELIVERY_SCHEDULE):
        return DELIVERY_SCHEDULE[attempts - 1]
    return None
