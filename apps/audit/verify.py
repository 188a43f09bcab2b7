"""Walking an audit chain: recompute every hash and link, and name the first broken event.

Each organisation has its own chain, and events without an organisation form the platform chain; a chain is verified
on its own, so one organisation's verification neither reads nor reveals another's events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from apps.audit.chain import GENESIS_HASH, PLATFORM_CHAIN, chain_key, event_hash
from apps.audit.models import AuditChainHead, AuditEvent, PublishedHead


@dataclass
class ChainVerification:
    """The outcome of one walk over one chain (``chain`` is the organisation's id, or 'platform')."""

    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    broken_sequence: int | None = None
    broken_event_id: int | None = None
    reason: str = ""
    chain: str = ""
    published_sequence: int | None = None
    published_at: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


EVERY_CHAIN = object()


def audit_chain_verify(
    *, organisation: Any = EVERY_CHAIN, chunk_size: int = 2000, expect_head: str | None = None
) -> ChainVerification:
    """Stream one chain's events in sequence order (bounded memory) and check hashes, links, gaps and its stored head.

    ``organisation`` is an Organisation or its id, or None for the platform chain; left out, every chain is verified
    (the operator's check) and the first broken one is returned, or a summary with ``chain`` 'all'. ``expect_head``
    is a hash of the chain published earlier: it must still be in the chain, or history was rewritten.

    Every walk also checks the chain against its last head recorded as published (``PublishedHead``: the head API,
    signed audit extracts): the event at that sequence must have that hash, and the chain must reach it, so a chain
    emptied or cut short after publication fails even when its stored head was rewritten to match.
    """
    if organisation is EVERY_CHAIN:
        if expect_head is not None:
            raise ValueError("A published head belongs to one chain: name its organisation (None: the platform).")
        results = audit_chains_verify(chunk_size=chunk_size)
        failed = next((result for result in results if not result.ok), None)
        if failed is not None:
            return failed
        return ChainVerification(True, sum(result.checked for result in results), 0, "", chain="all")
    organisation_id = getattr(organisation, "pk", organisation)
    chain = chain_key(organisation_id)
    previous_hash = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    seen_expected = expect_head is None
    published = PublishedHead.objects.filter(chain=chain).order_by("-sequence").first()
    published_fields = {
        "published_sequence": published.sequence if published else None,
        "published_at": published.published_at.isoformat() if published else None,
    }

    def broken(event: AuditEvent | None, sequence: int, reason: str) -> ChainVerification:
        return ChainVerification(
            False,
            checked,
            expected_sequence - 1,
            previous_hash,
            sequence,
            event.pk if event else None,
            reason,
            chain,
            **published_fields,
        )

    if chain == PLATFORM_CHAIN:
        queryset = AuditEvent.objects.filter(organisation__isnull=True)
    else:
        queryset = AuditEvent.objects.filter(organisation_id=chain)
    for event in queryset.order_by("sequence").iterator(chunk_size=chunk_size):
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
        if published is not None and event.sequence == published.sequence and event.hash != published.hash:
            return broken(
                event,
                event.sequence,
                f"its hash differs from the head #{published.sequence} published on {published.published_at:%Y-%m-%d}"
                " (history was rewritten)",
            )
        if not seen_expected and event.hash == expect_head:
            seen_expected = True
        previous_hash = event.hash
        expected_sequence += 1
        checked += 1
    head = AuditChainHead.objects.filter(chain=chain).first()
    last_sequence = expected_sequence - 1
    if published is not None and last_sequence < published.sequence:
        return ChainVerification(
            False,
            checked,
            last_sequence,
            previous_hash,
            last_sequence + 1,
            None,
            f"the chain ends at #{last_sequence} but head #{published.sequence} was published on"
            f" {published.published_at:%Y-%m-%d %H:%M} UTC: events were deleted"
            + (" (the chain is empty)" if not checked else ""),
            chain,
            **published_fields,
        )
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
            chain,
            **published_fields,
        )
    if head is None and checked:
        return ChainVerification(
            False,
            checked,
            last_sequence,
            previous_hash,
            None,
            None,
            "the chain's stored head is missing",
            chain,
            **published_fields,
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
            chain,
            **published_fields,
        )
    return ChainVerification(True, checked, last_sequence, previous_hash, chain=chain, **published_fields)


def audit_chains() -> list[Any]:
    """Every chain that has a head, an event or a published head: organisation ids, and None for the platform chain
    (a chain emptied after its head was published is still walked, and fails)."""
    ids = set(AuditChainHead.objects.values_list("organisation_id", flat=True))
    ids |= set(PublishedHead.objects.order_by().values_list("organisation_id", flat=True).distinct())
    ids |= set(AuditEvent.objects.order_by().values_list("organisation_id", flat=True).distinct())
    return sorted(ids, key=lambda value: (value is not None, str(value)))


def audit_chains_verify(*, chunk_size: int = 2000) -> list[ChainVerification]:
    """Verify every chain, the platform's first (the operator's check; the API and pages verify one organisation)."""
    return [audit_chain_verify(organisation=chain, chunk_size=chunk_size) for chain in audit_chains()]
