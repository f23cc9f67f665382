"""Outbound events to the orchestrator: signed HTTP POSTs and a Redis stream.

Every status change writes an event to `outbox_events` in its own transaction, with one
`deliver` job per configured URL (and a `stream` job when Redis is configured). The worker
delivers them at least once; receivers deduplicate by event id (docs/webhooks.md).

The signature follows Stripe's scheme: `Mmo-Signature: t=<unix time>,v1=<hex HMAC-SHA256
of "<t>.<body>">`, with one `v1` per secret in MMO_EVENT_SECRETS so that a secret can be
rotated without losing events.
"""

from __future__ import annotations

import json

from mmo_core.crypto import SIGNATURE_HEADER, sign_payload, verify_payload

from mmo_host.records import EventRecord

__all__ = ["SIGNATURE_HEADER", "event_body", "sign", "verify"]

# When a delivery is tried again: schedule.DELIVERY_STEPS (about 3 days, like Stripe).


def event_body(event: EventRecord) -> bytes:
    payload = event.payload
    if isinstance(payload, str):
        payload = json.loads(payload)
    body = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        # a payment's events carry the payment; a batch's (`batch.*`) the batch
        "batch" if event.payment_id is None else "payment": payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# The signing scheme lives in the core, shared with plugins that ask the orchestrator.
sign = sign_payload
verify = verify_payload
