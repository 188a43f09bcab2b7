"""Writing to the audit chain. Every mutating service in Attest calls ``audit_record`` exactly once."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone

from apps.audit.chain import GENESIS_HASH, chain_key, event_hash, to_json_value
from apps.audit.context import current_request_id
from apps.audit.models import AuditChainHead, AuditEvent, PublishedHead


def audit_record(
    *,
    actor: Any,
    action: str,
    organisation: Any = None,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: Any = None,
    after: Any = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append one event to its organisation's chain (the platform chain without one), inside the caller's transaction.

    That chain's head row is locked (SELECT ... FOR UPDATE) for the rest of the transaction, so concurrent writers to
    the chain queue up and each links to the event the previous one wrote, while other organisations' writers do not
    wait; if the caller's transaction rolls back, so does the event.
    ``actor`` is a User, or None for the system (scheduled jobs).
    """
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    organisation_id = getattr(organisation, "pk", organisation)
    chain = chain_key(organisation_id)
    with transaction.atomic():
        # Create the head lazily (a new organisation, a flushed test database); ignore_conflicts makes the race harmless.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain=chain, organisation_id=organisation_id, sequence=0, hash=GENESIS_HASH)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        fields = {
            "sequence": head.sequence + 1,
            "created_at": timezone.now(),
            "organisation_id": organisation_id,
            "actor_id": actor_obj.pk if actor_obj else None,
            "actor_label": actor_obj.get_username() if actor_obj else "system",
            "request_id": request_id if request_id is not None else current_request_id.get(),
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "before": to_json_value(before),
            "after": to_json_value(after),
            "prev_hash": head.hash,
        }
        digest = event_hash(**fields)
        event = AuditEvent.objects.create(hash=digest, **fields)
        head.sequence = event.sequence
        head.hash = digest
        head.save(update_fields=["sequence", "hash"])
    return event


def audit_head_publish(
    *, organisation: Any, source: str, sequence: int | None = None, hash: str | None = None
) -> dict[str, Any]:
    """Record that a chain's head leaves the database (``source``: 'api', 'report'); return it as published.

    ``sequence`` and ``hash`` name a head read earlier (a report's verified head); left out, the current head is read.
    From now on that chain must contain this hash at this position (``audit_chain_verify``). Insert-only: a position
    is recorded once, by its first publication. An empty chain publishes nothing.
    """
    from apps.audit.selectors import audit_chain_head

    organisation_id = getattr(organisation, "pk", organisation)
    if sequence is None or hash is None:
        head = audit_chain_head(organisation_id)
        sequence, hash = head["sequence"], head["hash"]
    if sequence:
        PublishedHead.objects.bulk_create(
            [
                PublishedHead(
                    chain=chain_key(organisation_id),
                    organisation_id=organisation_id,
                    sequence=sequence,
                    hash=hash,
                    published_at=timezone.now(),
                    source=source,
                )
            ],
            ignore_conflicts=True,
        )
    return {"organisation": organisation_id, "sequence": sequence, "hash": hash}
