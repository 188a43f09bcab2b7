"""Recording third-party models. Each service writes one audit event (ids, status, sha256 digests; never the text
people typed). A change a review binds (identity, version, documentation, status) is followed by
``reviews_supersede_stale``, as a model card's is: the board voted on what the use case relied on then."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.permissions import can, may_record_for
from apps.usecases.models import UseCase

REQUIRED = ("supplier", "name", "version", "intended_use")
OPTIONAL = ("kind", "licence", "data_location", "contractual_terms", "review_due_on")
LIMITS = {"supplier": 200, "name": 200, "version": 100, "licence": 200, "data_location": 200}
TEXT_LIMIT = 5000
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _fields_digest(model: ThirdPartyModel) -> str:
    return _digest({name: getattr(model, name) for name in (*REQUIRED, *OPTIONAL)})


def _clean(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    unknown = set(data) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise ValidationFailed("Unknown fields.", {name: ["unknown field"] for name in sorted(unknown)})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in REQUIRED:
        if name not in data and partial:
            continue
        value = str(data.get(name) or "").strip()
        if not value:
            errors[name] = ["This field is required."]
        cleaned[name] = value
    for name in ("licence", "data_location", "contractual_terms"):
        if name in data:
            cleaned[name] = str(data[name] or "").strip()
    for name, value in cleaned.items():
        limit = LIMITS.get(name, TEXT_LIMIT)
        if isinstance(value, str) and len(value) > limit:
            errors[name] = [f"At most {limit} characters."]
    if "kind" in data:
        if data["kind"] not in ThirdPartyModel.Kind.values:
            errors["kind"] = [f"One of {', '.join(ThirdPartyModel.Kind.values)}."]
        cleaned["kind"] = data["kind"]
    if "review_due_on" in data:
        value = data["review_due_on"]
        if isinstance(value, str) and value:
            try:
                value = date.fromisoformat(value)
            except ValueError:
                errors["review_due_on"] = ["A date, YYYY-MM-DD."]
        cleaned["review_due_on"] = value or None
    if errors:
        raise ValidationFailed("Check the third-party model's details.", errors)
    return cleaned


def _supersede_stale_reviews(usecase: UseCase, actor: User) -> None:
    from apps.ethics.services import reviews_supersede_stale

    reviews_supersede_stale(usecase=usecase, actor=actor)


def thirdparty_register(*, actor: User, usecase: UseCase, data: dict[str, Any]) -> ThirdPartyModel:
    """Record a supplier's model the use case uses (its owner or an org admin)."""
    if not _can_see_usecase(actor, usecase):
        raise NotFound()
    if not may_record_for(actor, usecase):
        raise PermissionDenied("Only the use case's owner or an org admin records its third-party models.")
    if usecase.status == UseCase.Status.RETIRED:
        raise InvalidState("The use case is retired.")
    cleaned = _clean(data, partial=False)
    with transaction.atomic():
        model = ThirdPartyModel.objects.create(
            organisation=usecase.organisation, usecase=usecase, created_by=actor, **cleaned
        )
        audit_record(
            actor=actor,
            organisation=usecase.organisation,
            action="thirdparty.register",
            target=model,
            after={"usecase": str(usecase.id), "kind": model.kind, "fields_sha256": _fields_digest(model)},
        )
    _supersede_stale_reviews(usecase, actor)
    return model


def _can_see_usecase(actor: User, usecase: UseCase) -> bool:
    from apps.usecases.permissions import can as usecase_can

    return usecase_can(actor, "view", usecase)


def _may_change(actor: User, model: ThirdPartyModel) -> None:
    if not can(actor, "view", model):
        raise NotFound()
    if not can(actor, "change", model):
        raise PermissionDenied("Only the use case's owner or an org admin changes its third-party models.")
    if model.status == ThirdPartyModel.Status.RETIRED:
        raise InvalidState("A retired third-party model is kept as it was; record a new one.")


def thirdparty_update(*, actor: User, model: ThirdPartyModel, data: dict[str, Any]) -> ThirdPartyModel:
    """Change the recorded details (a new version in use is a change here, and open reviews restart)."""
    _may_change(actor, model)
    cleaned = _clean(data, partial=True)
    before = _fields_digest(model)
    with transaction.atomic():
        locked = ThirdPartyModel.objects.select_for_update().get(pk=model.pk)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="thirdparty.update",
            target=locked,
            before={"fields_sha256": before},
            after={"fields_sha256": _fields_digest(locked), "changed": sorted(cleaned)},
        )
    _supersede_stale_reviews(locked.usecase, actor)
    return locked


def thirdparty_record_documentation(
    *,
    actor: User,
    model: ThirdPartyModel,
    content: bytes | None = None,
    file_name: str = "",
    url: str = "",
    sha256: str = "",
    received_on: date | None = None,
) -> ThirdPartyModel:
    """Record the documentation the supplier gave: an uploaded file (hashed here) or a link with the sha256 of the
    document behind it. Attest keeps the hash, the name and the link, which is what a review and a requirement
    bind; the document itself stays in the organisation's contract records."""
    _may_change(actor, model)
    url = (url or "").strip()
    sha256 = (sha256 or "").strip().lower()
    if content is not None:
        if not content:
            raise ValidationFailed("The file is empty.", {"file": ["empty file"]})
        digest = hashlib.sha256(content).hexdigest()
        if sha256 and sha256 != digest:
            raise ValidationFailed(
                "The file's sha256 is not the one given.", {"sha256": ["does not match the uploaded file"]}
            )
        name = (file_name or "documentation")[:255]
    else:
        if not url.startswith("https://"):
            raise ValidationFailed("Upload the document or give its https link.", {"url": ["an https link"]})
        if not SHA256.match(sha256):
            raise ValidationFailed(
                "Give the sha256 of the document behind the link, so the review binds exactly that document.",
                {"sha256": ["64 hexadecimal characters"]},
            )
        if len(url) > 500:
            raise ValidationFailed("The link is too long.", {"url": ["at most 500 characters"]})
        digest = sha256
        name = url.rsplit("/", 1)[-1][:255] or url[:255]
    with transaction.atomic():
        locked = ThirdPartyModel.objects.select_for_update().get(pk=model.pk)
        previous = locked.documentation_sha256
        locked.documentation_sha256 = digest
        locked.documentation_name = name
        locked.documentation_url = url if content is None else ""
        locked.documentation_received_on = received_on or locked.documentation_received_on or _today()
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="thirdparty.documentation",
            target=locked,
            before={"documentation_sha256": previous},
            after={"documentation_sha256": digest, "source": "upload" if content is not None else "link"},
        )
    _supersede_stale_reviews(locked.usecase, actor)
    return locked


def _today() -> date:
    from django.utils import timezone

    return timezone.localdate()


def thirdparty_set_status(*, actor: User, model: ThirdPartyModel, status: str, reason: str) -> ThirdPartyModel:
    """Suspend, resume or retire the model's use (a reason is required; retiring is final)."""
    if not can(actor, "view", model):
        raise NotFound()
    if not can(actor, "change", model):
        raise PermissionDenied("Only the use case's owner or an org admin changes its third-party models.")
    if status not in ThirdPartyModel.Status.values:
        raise ValidationFailed("Unknown status.", {"status": [f"One of {', '.join(ThirdPartyModel.Status.values)}."]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why.", {"reason": ["This field is required."]})
    if len(reason) > 500:
        raise ValidationFailed("The reason is too long.", {"reason": ["At most 500 characters."]})
    with transaction.atomic():
        locked = ThirdPartyModel.objects.select_for_update().get(pk=model.pk)
        if locked.status == ThirdPartyModel.Status.RETIRED:
            raise InvalidState("A retired third-party model stays retired.")
        if locked.status == status:
            raise InvalidState(f"The model is already {locked.get_status_display().lower()}.")
        previous = locked.status
        locked.status = status
        locked.status_reason = reason
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="thirdparty.status",
            target=locked,
            before={"status": previous},
            after={"status": status, "reason_sha256": _digest(reason)},
        )
    _supersede_stale_reviews(locked.usecase, actor)
    return locked
