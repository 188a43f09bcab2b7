"""Writes of the risk register: record, update and close a risk directly, one audit event each.

Events hold the ratings, treatment, dates and digests of the texts, never the texts themselves: a risk's title and
description are typed by people and may name individuals.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organisation, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.portfolio.models import Risk
from apps.portfolio.permissions import RISK_WRITERS
from apps.usecases.models import UseCase

EDITABLE_FIELDS = (
    "title",
    "description",
    "likelihood",
    "severity",
    "owner",
    "treatment",
    "treatment_plan",
    "review_on",
    "usecase",
)
TEXT_FIELDS = ("title", "description", "treatment_plan")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _audit_view(values: dict[str, Any]) -> dict[str, Any]:
    """What an event may hold of a risk's fields: texts as digests, people and use cases by id."""
    view: dict[str, Any] = {}
    for name, value in values.items():
        if name in TEXT_FIELDS:
            view[f"{name}_sha256"] = _digest(value or "")
        elif isinstance(value, (User, UseCase)):
            view[name] = str(value.pk)
        elif isinstance(value, date):
            view[name] = value.isoformat()
        else:
            view[name] = value
    return view


def _rating(value: Any, name: str, errors: dict[str, list[str]]) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors[name] = ["must be a whole number from 1 to 5"]
        return None
    if not 1 <= number <= 5:
        errors[name] = ["must be from 1 to 5"]
        return None
    return number


def _validate(organisation: Organisation, data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The risk's fields after applying ``data`` over ``current``, or ValidationFailed naming every wrong field."""
    merged = {**current, **{key: value for key, value in data.items() if key in EDITABLE_FIELDS}}
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    title = (merged.get("title") or "").strip()
    if not title:
        errors["title"] = ["is required"]
    elif len(title) > 200:
        errors["title"] = ["at most 200 characters"]
    cleaned["title"] = title
    cleaned["description"] = (merged.get("description") or "").strip()
    cleaned["treatment_plan"] = (merged.get("treatment_plan") or "").strip()
    cleaned["likelihood"] = _rating(merged.get("likelihood"), "likelihood", errors)
    cleaned["severity"] = _rating(merged.get("severity"), "severity", errors)
    treatment = merged.get("treatment")
    if treatment not in Risk.Treatment.values:
        errors["treatment"] = [f"must be one of {', '.join(Risk.Treatment.values)}"]
    cleaned["treatment"] = treatment
    if treatment in (Risk.Treatment.MITIGATE, Risk.Treatment.TRANSFER) and not cleaned["treatment_plan"]:
        # Mitigating or transferring is a plan of work; avoiding or accepting can be a decision on its own.
        errors["treatment_plan"] = ["describe how the risk is mitigated or to whom it is transferred"]
    review_on = merged.get("review_on")
    if isinstance(review_on, str):
        try:
            review_on = date.fromisoformat(review_on)
        except ValueError:
            review_on = None
    if not isinstance(review_on, date):
        errors["review_on"] = ["must be a date (YYYY-MM-DD)"]
    cleaned["review_on"] = review_on
    owner = merged.get("owner")
    if not isinstance(owner, User) or not Membership.objects.filter(organisation=organisation, user=owner).exists():
        errors["owner"] = ["must be a member of the organisation"]
    cleaned["owner"] = owner
    usecase = merged.get("usecase")
    if usecase is not None and (not isinstance(usecase, UseCase) or usecase.organisation_id != organisation.id):
        errors["usecase"] = ["must be a use case of the organisation"]
    cleaned["usecase"] = usecase
    if errors:
        raise ValidationFailed("The risk has invalid fields.", errors)
    return cleaned


def _require_writer(actor: User, organisation: Organisation) -> None:
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    if not roles & set(RISK_WRITERS):
        raise PermissionDenied("Only org admins, use-case owners and privacy officers record and work risks.")


def _next_reference(organisation: Organisation) -> str:
    # The organisation row is locked by the caller, so two risks cannot take the same number.
    count = Risk.objects.filter(organisation=organisation).count()
    return f"RK-{count + 1:04d}"


def risk_create(*, actor: User, organisation: Organisation, data: dict[str, Any]) -> Risk:
    """Record a risk in the organisation's register (owner defaults to the actor)."""
    _require_writer(actor, organisation)
    cleaned = _validate(organisation, {"owner": actor, **data}, {})
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        risk = Risk.objects.create(
            organisation=organisation, reference=_next_reference(organisation), created_by=actor, **cleaned
        )
        audit_record(
            actor=actor,
            organisation=organisation,
            action="risk.create",
            target=risk,
            after={**_audit_view(cleaned), "reference": risk.reference, "score": risk.score},
        )
    return risk


def risk_update(*, actor: User, risk: Risk, data: dict[str, Any]) -> Risk:
    """Change an open risk's fields (nothing is written when nothing changed)."""
    _require_writer(actor, risk.organisation)
    with transaction.atomic():
        locked = Risk.objects.select_for_update().select_related("organisation").get(pk=risk.pk)
        if locked.status != Risk.Status.OPEN:
            raise InvalidState("A closed risk is kept as it was closed; record a new risk instead.")
        current = {name: getattr(locked, name) for name in EDITABLE_FIELDS}
        cleaned = _validate(locked.organisation, data, current)
        changed = sorted(name for name in EDITABLE_FIELDS if cleaned[name] != current[name])
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, cleaned[name])
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="risk.update",
            target=locked,
            before=_audit_view({name: current[name] for name in changed}),
            after={**_audit_view({name: cleaned[name] for name in changed}), "score": locked.score},
        )
    return locked


def risk_close(*, actor: User, risk: Risk, note: str) -> Risk:
    """Close an open risk with a note saying why it no longer needs tracking."""
    _require_writer(actor, risk.organisation)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("Say why the risk is closed.", {"note": ["is required"]})
    with transaction.atomic():
        locked = Risk.objects.select_for_update().select_related("organisation").get(pk=risk.pk)
        if locked.status != Risk.Status.OPEN:
            raise InvalidState("This risk is already closed.")
        locked.status = Risk.Status.CLOSED
        locked.closed_at = timezone.now()
        locked.closed_by = actor
        locked.closing_note = note
        locked.save(update_fields=["status", "closed_at", "closed_by", "closing_note", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="risk.close",
            target=locked,
            before={"status": Risk.Status.OPEN},
            after={"status": Risk.Status.CLOSED, "note_sha256": _digest(note), "score": locked.score},
        )
    return locked
