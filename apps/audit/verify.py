"""Walking the audit chain: recompute every hash and link, and name the first broken event."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from apps.audit.chain import GENESIS_HASH, event_hash
from apps.audit.models import AuditChainHead, AuditEvent


@dataclass
class ChainVerification:
    """The outcome of one walk over the chain."""

    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    broken_sequence: int | None = None
    broken_event_id: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def audit_chain_verify(*, chunk_size: int = 2000, expect_head: str | None = None) -> ChainVerification:
    """Stream events in sequence order (bounded memory) and check hashes, links, gaps and the stored head.

    ``expect_head`` is a hash published earlier: it must still be in the chain, or history was rewritten.
    """
    previous_hash = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    seen_expected = expect_head is None

    def broken(event: AuditEvent | None, sequence: int, reason: str) -> ChainVerification:
        return ChainVerification(
            False, checked, expected_sequence - 1, previous_hash, sequence, event.pk if event else None, reason
        )

    queryset = AuditEvent.objects.order_by("sequence")
    for event in queryset.iterator(chunk_size=chunk_size):
        if event.sequence != expected_sequence:
            return broken(
                event, expected_sequence, f"event #{expected_sequence} is missing (next stored is #{event.sequence})"
            )
        if event.prev_hash != previous_hash:
            return broken(event, event.sequence, "its prev_hash does not match the previous event's hash")
        recomputed = event_hash(
            sequence=event.sequence,
            created_at=event.created_at,
            organisation_id=event.organisation_id,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            request_id=event.request_id,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return broken(event, event.sequence, "its content does not match its hash (the row was changed)")
        if not seen_expected and event.hash == expect_head:
            seen_expected = True
        previous_hash = event.hash
        expected_sequence += 1
        checked += 1
    head = AuditChainHead.objects.first()
    last_sequence = expected_sequence - 1
    if head is not None and (head.sequence != last_sequence or head.hash != previous_hash):
        return ChainVerification(
            False,
            checked,
            last_sequence,
            previous_hash,
            head.sequence,
            None,
            f"the stored head (#{head.sequence}) does not match the last event (#{last_sequence}):"
            " events were deleted from the end",
        )
    if not seen_expected:
        return ChainVerification(
            False,
            checked,
            last_sequence,
            previous_hash,
            None,
            None,
            "the published head hash is not in the chain: history was rewritten",
        )
    return ChainVerification(True, checked, last_sequence, previous_hash)
