"""Registering, editing and moving use cases through their lifecycle. Each function writes one audit event."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.usecases.dpia import dpia_missing, normalise_dpia
from apps.usecases.models import UseCase, UseCaseRevision
from apps.usecases.policies import normalise_fairness_policy, normalise_privacy_policy
from apps.usecases.vocab import AnnexIIIArea, Article9Condition, LawfulBasis, RiskTier

S = UseCase.Status

# The fields a revision snapshots (and hashes): everything a reviewer reads.
CONTENT_FIELDS = [
    "title",
    "purpose",
    "description",
    "lawful_basis",
    "special_category",
    "art9_condition",
    "data_subject_categories",
    "personal_data_categories",
    "recipients",
    "third_country_transfers",
    "retention",
    "security_measures",
    "risk_tier",
    "annex_iii_area",
    "risk_justification",
    "affected_groups",
    "automated_decisions",
    "ai_act_role",
    "dpia",
    "fairness_policy",
    "privacy_policy",
]
AI_ACT_ROLES = ("provider", "deployer", "both")
LIST_FIELDS = {"data_subject_categories", "personal_data_categories", "recipients", "affected_groups"}


@dataclass(frozen=True)
class Transition:
    """One lifecycle move: where it may start, where it ends, and who may make it."""

    sources: tuple[str, ...]
    target: str
    owner_may: bool = False
    admin_may: bool = False
    needs_reason: bool = False


# Approval, rejection and requests for changes are the ethics board's decisions (apps.ethics): submitting opens a
# development review, and the board's decision moves the use case through ``usecase_apply_decision``.
TRANSITIONS: dict[str, Transition] = {
    "submit": Transition((S.DRAFT,), S.SUBMITTED, owner_may=True, admin_may=True),
    "reopen": Transition((S.REJECTED,), S.DRAFT, owner_may=True, admin_may=True),
    "put_in_production": Transition((S.APPROVED,), S.IN_PRODUCTION, admin_may=True),
    "retire": Transition(
        (S.APPROVED, S.IN_PRODUCTION, S.REJECTED), S.RETIRED, admin_may=True, owner_may=True, needs_reason=True
    ),
}

# Where each board outcome leaves the use case: changes requested send it back to its owner as a draft.
DECISION_TARGETS = {
    "approved": S.APPROVED,
    "approved_with_conditions": S.APPROVED,
    "changes_requested": S.DRAFT,
    "rejected": S.REJECTED,
}


def _clean_list(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
    if isinstance(value, str):
        value = [line.strip() for line in value.replace(",", "\n").splitlines()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors[field] = ["must be a list of strings"]
        return []
    return [item.strip() for item in value if item.strip()]


def _validate(organisation: Organisation, data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Merge ``data`` over ``current`` and check the whole record; raise ValidationFailed naming every field."""
    merged = {**current, **{key: value for key, value in data.items() if key in CONTENT_FIELDS}}
    errors: dict[str, list[str]] = {}
    for field in ("title", "purpose", "retention"):
        merged[field] = (merged.get(field) or "").strip()
        if not merged[field]:
            errors[field] = ["This field is required."]
    purposes = organisation.processing_purposes or []
    if merged["purpose"] and purposes and merged["purpose"] not in purposes:
        errors["purpose"] = [f"must be one of the organisation's processing purposes: {', '.join(purposes)}"]
    if merged.get("lawful_basis") not in LawfulBasis.values:
        errors["lawful_basis"] = ["Choose a lawful basis under GDPR Art. 6(1)."]
    merged["special_category"] = bool(merged.get("special_category"))
    merged["art9_condition"] = merged.get("art9_condition") or ""
    if merged["special_category"] and merged["art9_condition"] not in Article9Condition.values:
        errors["art9_condition"] = ["Special-category data needs an Art. 9(2) condition."]
    if not merged["special_category"]:
        merged["art9_condition"] = ""
    if merged.get("risk_tier") not in RiskTier.values:
        errors["risk_tier"] = ["Choose the EU AI Act risk tier."]
    merged["annex_iii_area"] = merged.get("annex_iii_area") or ""
    if merged.get("risk_tier") == RiskTier.HIGH and merged["annex_iii_area"] not in AnnexIIIArea.values:
        errors["annex_iii_area"] = ["A high-risk system needs its Annex III area."]
    if merged.get("risk_tier") != RiskTier.HIGH:
        merged["annex_iii_area"] = ""
    merged["automated_decisions"] = bool(merged.get("automated_decisions"))
    merged["ai_act_role"] = merged.get("ai_act_role") or "both"
    if merged["ai_act_role"] not in AI_ACT_ROLES:
        errors["ai_act_role"] = [f"must be one of {', '.join(AI_ACT_ROLES)}"]
    for field in LIST_FIELDS:
        merged[field] = _clean_list(merged.get(field) or [], field, errors)
    transfers = merged.get("third_country_transfers") or []
    if not isinstance(transfers, list) or not all(
        isinstance(item, dict) and str(item.get("country", "")).strip() and str(item.get("safeguard", "")).strip()
        for item in transfers
    ):
        errors["third_country_transfers"] = ['must be a list of {"country", "safeguard"}, both filled']
    else:
        merged["third_country_transfers"] = [
            {"country": str(item["country"]).strip(), "safeguard": str(item["safeguard"]).strip()} for item in transfers
        ]
    for field in ("description", "risk_justification", "security_measures"):
        merged[field] = (merged.get(field) or "").strip()
    nested_errors: dict[str, Any] = {}
    for field, normalise in (
        ("dpia", normalise_dpia),
        ("fairness_policy", normalise_fairness_policy),
        ("privacy_policy", normalise_privacy_policy),
    ):
        try:
            merged[field] = normalise(merged.get(field))
        except ValidationFailed as exc:
            nested_errors.update(exc.details)
    if errors or nested_errors:
        raise ValidationFailed("The use case has invalid fields.", {**errors, **nested_errors})
    return merged


def _content(usecase: UseCase) -> dict[str, Any]:
    content = {field: getattr(usecase, field) for field in CONTENT_FIELDS}
    if usecase.monitoring_plan:
        # Set by its own service (apps.deployments.services.usecase_set_monitoring_plan) in any state; snapshotted
        # once set, so the revisions of use cases without a plan hash as they always did.
        content["monitoring_plan"] = usecase.monitoring_plan
    return content


def _snapshot_hash(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _write_revision(usecase: UseCase, *, author: User | None, changed: list[str], note: str) -> UseCaseRevision:
    snapshot = _content(usecase)
    return UseCaseRevision.objects.create(
        usecase=usecase,
        number=usecase.revision,
        snapshot=snapshot,
        sha256=_snapshot_hash(snapshot),
        changed_fields=changed,
        author=author,
        note=note,
    )


def _next_reference(organisation: Organisation) -> str:
    # The organisation row is locked by the caller, so two registrations cannot take the same number.
    count = UseCase.objects.filter(organisation=organisation).count()
    return f"UC-{count + 1:04d}"


def usecase_create(
    *, actor: User, organisation: Organisation, data: dict[str, Any], owner: User | None = None
) -> UseCase:
    """Register a use case as a draft, owned by ``owner`` (default: the actor)."""
    roles = roles_in(actor, organisation)
    if not roles:
        raise NotFound()
    if not roles & {Role.OWNER, Role.ADMIN}:
        raise PermissionDenied("Only use-case owners and org admins register use cases.")
    owner = owner or actor
    if Role.OWNER not in roles_in(owner, organisation):
        raise ValidationFailed("The owner must hold the use-case owner role.", {"owner": ["not a use-case owner"]})
    defaults = {field: "" for field in CONTENT_FIELDS}
    defaults.update(
        {field: [] for field in LIST_FIELDS},
        third_country_transfers=[],
        special_category=False,
        dpia={},
        fairness_policy={},
        privacy_policy={},
    )
    cleaned = _validate(organisation, data, defaults)
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        usecase = UseCase.objects.create(
            organisation=organisation, owner=owner, reference=_next_reference(organisation), **cleaned
        )
        revision = _write_revision(usecase, author=actor, changed=sorted(CONTENT_FIELDS), note="Registered")
        audit_record(
            actor=actor,
            organisation=organisation,
            action="usecase.create",
            target=usecase,
            after={**cleaned, "reference": usecase.reference, "revision_sha256": revision.sha256},
        )
    return usecase


def usecase_update(*, actor: User, usecase: UseCase, data: dict[str, Any], note: str = "") -> UseCase:
    """Edit a draft; writes a new revision with the changed fields (nothing is written when nothing changed)."""
    from apps.usecases.permissions import can

    if not roles_in(actor, usecase.organisation):
        raise NotFound()
    if usecase.status not in (S.DRAFT,):
        raise InvalidState(
            f"Only drafts can be edited; this use case is {usecase.get_status_display().lower()}. "
            "Withdraw it (or reopen it) first."
        )
    if not can(actor, "change", usecase):
        raise PermissionDenied("Only the use case's owner or an org admin may edit it.")
    with transaction.atomic():
        locked = UseCase.objects.select_for_update().get(pk=usecase.pk)
        before = _content(locked)
        cleaned = _validate(locked.organisation, data, before)
        changed = sorted(field for field in CONTENT_FIELDS if cleaned[field] != before[field])
        if not changed:
            return locked
        for field in changed:
            setattr(locked, field, cleaned[field])
        locked.revision += 1
        locked.save()
        revision = _write_revision(locked, author=actor, changed=changed, note=note)
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="usecase.update",
            target=locked,
            before={field: before[field] for field in changed},
            after={
                **{field: cleaned[field] for field in changed},
                "revision": locked.revision,
                "revision_sha256": revision.sha256,
            },
        )
    return locked


def submission_blockers(usecase: UseCase) -> list[str]:
    """Why a draft cannot be submitted yet (empty when it can)."""
    blockers = []
    if usecase.risk_tier == "prohibited":
        blockers.append("Prohibited practices under EU AI Act Art. 5 cannot be developed.")
    if not usecase.description:
        blockers.append("Describe the use case.")
    if not usecase.data_subject_categories:
        blockers.append("Name the categories of data subjects.")
    if not usecase.personal_data_categories:
        blockers.append("Name the categories of personal data.")
    if usecase.risk_tier in ("high", "limited") and not usecase.risk_justification:
        blockers.append("Justify the risk tier.")
    if not (usecase.fairness_policy or {}).get("sensitive_attributes"):
        blockers.append("The fairness policy names no sensitive attribute to audit.")
    blockers += [f"DPIA - {item}" for item in dpia_missing(usecase.dpia or {})]
    return blockers


def usecase_transition(*, actor: User, usecase: UseCase, action: str, reason: str = "") -> UseCase:
    """Move a use case through its lifecycle, if the action is allowed from its state for this actor."""
    from apps.usecases.permissions import can

    transition = TRANSITIONS.get(action)
    if transition is None:
        raise ValidationFailed(f"Unknown action {action!r}.", {"action": [f"one of {', '.join(TRANSITIONS)}"]})
    roles = roles_in(actor, usecase.organisation)
    if not roles:
        raise NotFound()
    with transaction.atomic():
        locked = UseCase.objects.select_for_update().select_related("organisation").get(pk=usecase.pk)
        if locked.status not in transition.sources:
            raise InvalidState(
                f"Cannot {action.replace('_', ' ')} a use case that is {locked.get_status_display().lower()}.",
                {"status": locked.status, "allowed_from": list(transition.sources)},
            )
        if not can(actor, action, locked):
            raise PermissionDenied(f"You may not {action.replace('_', ' ')} this use case.")
        reason = (reason or "").strip()
        if transition.needs_reason and not reason:
            raise ValidationFailed("Give a reason.", {"reason": ["A reason is required for this decision."]})
        if action == "submit":
            blockers = submission_blockers(locked)
            if blockers:
                raise ValidationFailed("The use case is not ready to submit.", {"blockers": blockers})
        if action == "put_in_production":
            from apps.ethics.models import Decision

            approved_models = Decision.objects.filter(
                review__usecase=locked, review__kind="deployment", outcome__in=["approved", "approved_with_conditions"]
            )
            if not approved_models.exists():
                raise InvalidState("No model of this use case is approved for deployment by the ethics board.")
        before = locked.status
        locked.status = transition.target
        locked.save(update_fields=["status", "updated_at"])
        after: dict[str, Any] = {"status": locked.status, "reason": reason, "revision": locked.revision}
        if action == "submit":
            from apps.ethics.services import review_open_development

            # Submitting opens the board's review: one fact, so this event names the review (no second event).
            review = review_open_development(actor=actor, usecase=locked)
            locked.refresh_from_db()
            after.update(
                status=locked.status,
                review=str(review.id),
                review_reference=review.reference,
                bindings_sha256=review.bindings_sha256,
            )
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action=f"usecase.{action}",
            target=locked,
            before={"status": before},
            after=after,
        )
    return locked


def usecase_apply_decision(*, usecase: UseCase, outcome: str) -> None:
    """Apply the board's decision on a development review (called inside the decision's transaction, whose audit
    event records it)."""
    UseCase.objects.filter(pk=usecase.pk, status=S.IN_REVIEW).update(status=DECISION_TARGETS[outcome])


def usecase_tighten_gate(*, actor: User, usecase: UseCase, metric: str, threshold: float) -> UseCase:
    """Make a fairness gate stricter (or add one) in any state: tightening never weakens a protection, so it needs
    no new review; loosening a gate is an ordinary edit of a draft."""
    from apps.usecases.permissions import can
    from apps.usecases.vocab import FAIRNESS_METRICS

    if not roles_in(actor, usecase.organisation):
        raise NotFound()
    if not can(actor, "tighten_gate", usecase):
        raise PermissionDenied("Only the use case's owner or an org admin changes its gates.")
    if metric not in FAIRNESS_METRICS:
        raise ValidationFailed("Unknown fairness metric.", {"metric": [f"one of {', '.join(FAIRNESS_METRICS)}"]})
    direction = FAIRNESS_METRICS[metric]
    with transaction.atomic():
        locked = UseCase.objects.select_for_update().get(pk=usecase.pk)
        if locked.status == S.RETIRED:
            raise InvalidState("A retired use case's policy no longer changes.")
        policy = dict(locked.fairness_policy or {})
        gates = [dict(g) for g in policy.get("gates", [])]
        current = next((g for g in gates if g["metric"] == metric), None)
        if current is not None:
            looser = threshold > current["threshold"] if direction == "max" else threshold < current["threshold"]
            if looser or threshold == current["threshold"]:
                raise ValidationFailed(
                    f"{metric} is already gated at {current['threshold']}; only a stricter threshold is accepted "
                    "outside a draft.",
                    {"threshold": ["not stricter"]},
                )
            before = current["threshold"]
            current["threshold"] = float(threshold)
        else:
            before = None
            gates.append({"metric": metric, "threshold": float(threshold), "direction": direction})
        policy["gates"] = gates
        locked.fairness_policy = normalise_fairness_policy(policy)
        locked.revision += 1
        locked.save()
        _write_revision(locked, author=actor, changed=["fairness_policy"], note=f"Gate {metric} tightened")
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="usecase.tighten_gate",
            target=locked,
            before={"metric": metric, "threshold": before},
            after={"metric": metric, "threshold": threshold, "revision": locked.revision},
        )
    from apps.ethics.services import reviews_supersede_stale

    reviews_supersede_stale(usecase=locked, actor=actor)
    return locked
