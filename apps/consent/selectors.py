"""Consent reads: the state of consent per subject and purpose at a point in time, and coverage figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from apps.accounts.models import Organisation
from apps.consent.models import ConsentRecord, DataSubject


def subjects_with_status(organisation: Organisation, purpose: str, at: datetime) -> QuerySet[DataSubject]:
    """Subjects annotated with ``status``: their latest consent event for ``purpose`` at or before ``at``."""
    latest = ConsentRecord.objects.filter(subject=OuterRef("pk"), purpose=purpose, occurred_at__lte=at).order_by(
        "-occurred_at", "-created_at"
    )
    return DataSubject.objects.filter(organisation=organisation).annotate(status=Subquery(latest.values("status")[:1]))


def consent_state(
    organisation: Organisation, purpose: str, at: datetime, pseudonyms: Iterable[str] | None = None
) -> dict[str, str]:
    """Pseudonym -> status (granted / withdrawn / refused) as of ``at``; subjects with no event are absent."""
    queryset = subjects_with_status(organisation, purpose, at).exclude(status=None)
    if pseudonyms is not None:
        state: dict[str, str] = {}
        wanted = list(dict.fromkeys(pseudonyms))
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start : start + 5000]
            state.update(queryset.filter(pseudonym__in=chunk).values_list("pseudonym", "status"))
        return state
    return dict(queryset.values_list("pseudonym", "status"))


def consent_coverage(organisation: Organisation, purpose: str, at: datetime, pseudonyms: list[str]) -> dict[str, Any]:
    """How many of ``pseudonyms`` (one per row) have valid consent, withdrew, refused, or are unknown."""
    state = consent_state(organisation, purpose, at, pseudonyms)
    counts = Counter(state.get(pseudonym, "unknown") for pseudonym in pseudonyms)
    total = len(pseudonyms)
    categories = ["granted", "withdrawn", "refused", "unknown"]
    return {
        "purpose": purpose,
        "as_of": at.isoformat(),
        "total": total,
        "counts": {name: counts.get(name, 0) for name in categories},
        "shares": {name: (counts.get(name, 0) / total if total else 0.0) for name in categories},
    }
