"""Writing model-card revisions. A new revision supersedes open deployment reviews of the model (their votes were cast
on the previous text)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.modelcards.models import ModelCardRevision
from apps.training.models import ModelVersion

# Mitchell et al.'s sections that need a person's words; the others (details, metrics, data, quantitative analyses)
# are generated from the model's manifest and its evaluation.
NARRATIVE_SECTIONS = {
    "intended_use": "Intended use: primary uses and users",
    "out_of_scope": "Out-of-scope uses",
    "factors": "Factors: groups, instrumentation and environments that matter",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
}


def card_prefill(model_version: ModelVersion) -> dict[str, str]:
    usecase = model_version.usecase
    sensitive = ", ".join((usecase.fairness_policy or {}).get("sensitive_attributes", [])) or "none named"
    return {
        "intended_use": f"{usecase.purpose}: {usecase.description}".strip(),
        "out_of_scope": "Any purpose other than the one above; fully automated decisions without human review.",
        "factors": f"Performance and fairness are reported by {sensitive} and their intersections.",
        "ethical_considerations": "Trained with differential privacy on consented, de-identified data. "
        + ("Special-category data is involved." if usecase.special_category else ""),
        "caveats": "Small groups have wide intervals; read them before relying on a group's figures.",
    }


def card_digest(narrative: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(narrative, sort_keys=True).encode()).hexdigest()


def modelcard_save(
    *, actor: User, model_version: ModelVersion, narrative: dict[str, Any] | None = None
) -> ModelCardRevision:
    """Save a revision of the card's narrative (with none, the prefilled text); an unchanged text makes none."""
    roles = roles_in(actor, model_version.organisation)
    if not roles:
        raise NotFound()
    if not roles & {Role.OWNER, Role.ADMIN}:
        raise PermissionDenied("Only use-case owners and org admins write model cards.")
    raw = card_prefill(model_version) if narrative is None else narrative
    unknown = set(raw) - set(NARRATIVE_SECTIONS)
    if unknown:
        raise ValidationFailed("Unknown model-card sections.", {name: ["unknown section"] for name in sorted(unknown)})
    text = _text(raw)
    if not text["intended_use"]:
        raise ValidationFailed("Say what the model is for.", {"intended_use": ["This section is required."]})
    with transaction.atomic():
        revision, created = _store_revision(actor=actor, model_version=model_version, text=text)
        if not created:
            return revision
        audit_record(
            actor=actor,
            organisation=model_version.organisation,
            action="modelcard.save",
            target=revision,
            after={"model_version": str(model_version.id), "number": revision.number, "sha256": revision.sha256},
        )
    from apps.ethics.services import reviews_supersede_stale

    reviews_supersede_stale(usecase=model_version.usecase, actor=actor)
    return revision


def modelcard_prefill_first(*, actor: User, model_version: ModelVersion) -> ModelCardRevision:
    """The prefilled text as the first revision of a model that has no card, for the deployment review that needs one
    (``review_request_deployment``, which checked the actor). A step of that request, not a service: no audit event
    of its own (the review's event binds this revision and its sha256) and nothing to supersede (no review can be
    bound to a card that did not exist)."""
    with transaction.atomic():
        revision, _created = _store_revision(
            actor=actor, model_version=model_version, text=_text(card_prefill(model_version))
        )
    return revision


def _text(raw: dict[str, Any]) -> dict[str, str]:
    return {key: str(raw.get(key) or "").strip()[:5000] for key in NARRATIVE_SECTIONS}


def _store_revision(
    *, actor: User, model_version: ModelVersion, text: dict[str, str]
) -> tuple[ModelCardRevision, bool]:
    """A new revision with this text, or the latest one when its text is the same: (revision, created)."""
    digest = card_digest(text)
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        latest = model_version.card_revisions.order_by("-number").first()
        if latest is not None and latest.sha256 == digest:
            return latest, False
        revision = ModelCardRevision.objects.create(
            model_version=model_version,
            number=(latest.number + 1) if latest else 1,
            narrative=text,
            sha256=digest,
            author=actor,
        )
    return revision, True


def current_card(model_version: ModelVersion) -> ModelCardRevision | None:
    return model_version.card_revisions.order_by("-number").first()
