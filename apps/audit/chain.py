"""Canonical serialisation and hashing of audit events (pure functions, shared by writer and verifier)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64
PLATFORM_CHAIN = "platform"


def chain_key(organisation_id: Any) -> str:
    """The chain an event belongs to: its organisation's, or the platform's for events without one."""
    return str(uuid.UUID(str(organisation_id))) if organisation_id else PLATFORM_CHAIN


def to_json_value(value: Any) -> Any:
    """Normalise before/after data to plain JSON types, so what is hashed is exactly what is stored."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def canonical_bytes(
    *,
    sequence: int,
    created_at: datetime,
    organisation_id: Any,
    actor_id: Any,
    actor_label: str,
    request_id: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    prev_hash: str,
) -> bytes:
    payload = {
        "sequence": sequence,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "organisation_id": str(organisation_id) if organisation_id else None,
        "actor_id": str(actor_id) if actor_id else None,
        "actor_label": actor_label,
        "request_id": request_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_bytes(**fields)).hexdigest()
