"""Deployment reads: whether a model's approval is in force, where models run, windows, and the facts about a model
that monitoring needs (its feature types and classes), read without loading torch."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.deployments.models import Deployment, MonitoringReference
from apps.ethics.models import ApprovalRevocation, Decision, ReviewRequest, Waiver
from apps.training.models import ModelVersion

PREPROCESS_FILE = "preprocess.json"  # workers/engine/training/artifacts.SPEC; that module imports torch


# ------------------------------------------------------------------------------------------------------- approval


def deployment_review(model_version: ModelVersion) -> ReviewRequest | None:
    """The review a deployment of the model rests on: its newest deployment review that was not superseded (the one
    ``apps.ethics.selectors.deployment_status`` shows)."""
    return (
        model_version.reviews.filter(kind=ReviewRequest.Kind.DEPLOYMENT)
        .exclude(status=ReviewRequest.Status.SUPERSEDED)
        .select_related("decision")
        .order_by("-created_at")
        .first()
    )


def waivers_relied_on(decision: Decision) -> list[Waiver]:
    ids = [item["id"] for item in decision.waivers or [] if item.get("id")]
    return list(Waiver.objects.filter(id__in=ids).order_by("expires_on"))


def approval_blockers(model_version: ModelVersion, today: date | None = None) -> list[str]:
    """Why the model may not be deployed now, one sentence each; empty when its approval is in force: the newest
    deployment review was approved, the approval was not revoked, every waiver the decision relied on is still in
    force, and the model is neither a non-private baseline nor trained with seeded noise."""
    today = today or timezone.localdate()
    blockers = []
    if model_version.non_private:
        blockers.append(f"{model_version} is a non-private baseline, kept for comparison only: it is never deployed.")
    if model_version.noise_is_seeded:
        blockers.append(f"{model_version} cannot be deployed: {model_version.privacy_warning}")
    review = deployment_review(model_version)
    decision = getattr(review, "decision", None) if review is not None else None
    if review is None:
        blockers.append(f"{model_version} has no deployment review: ask the ethics board to approve it first.")
    elif review.status == ReviewRequest.Status.OPEN:
        blockers.append(f"The ethics board has not decided yet: {review.reference} is open for votes.")
    elif decision is None:
        blockers.append(
            f"{review.reference} ended without a decision ({review.get_status_display().lower()}): ask the board "
            "for a new deployment review."
        )
    elif not decision.approved:
        blockers.append(
            f"The ethics board decided on {review.reference}: {decision.get_outcome_display().lower()}. Only an "
            "approval allows deployment."
        )
    else:
        revocation = ApprovalRevocation.objects.filter(decision=decision).select_related("revoked_by").first()
        if revocation is not None:
            blockers.append(
                f"The approval given in {review.reference} was revoked on {revocation.created_at:%d %b %Y} by "
                f"{revocation.revoked_by.get_username()}: {revocation.reason}"
            )
        for waiver in waivers_relied_on(decision):
            if waiver.status != Waiver.Status.GRANTED or waiver.expires_on < today:
                covered = "; ".join(item.get("label", item.get("key", "")) for item in waiver.waived or [])
                blockers.append(
                    f"The approval given in {review.reference} relies on a waiver that expired on "
                    f"{waiver.expires_on:%d %b %Y} (it covered: {covered}). The board must grant a new waiver "
                    "or approve the model again."
                )
    return blockers


# ---------------------------------------------------------------------------------------------------- deployments


def deployments_of_model(model_version: ModelVersion) -> QuerySet[Deployment]:
    """Where the model runs and ran, newest first (the model page's "where it runs")."""
    return model_version.deployments.select_related("usecase", "owner").order_by("-created_at")


def reference_of(model_version: ModelVersion) -> MonitoringReference | None:
    return MonitoringReference.objects.filter(model_version=model_version).first()


# ------------------------------------------------------------------------------------------------------- the plan


def canonical_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def plan_in_force(usecase: Any) -> dict[str, Any]:
    """The use case's monitoring plan, or the engine's default plan when none was set (validated either way)."""
    from workers.engine.monitoring.monitors import default_plan, validate_plan

    clean, _errors = validate_plan(usecase.monitoring_plan or default_plan())
    return clean


def window_bounds(plan: dict[str, Any], at: datetime) -> tuple[datetime, datetime]:
    """The window holding ``at``: an ISO week starting Monday 00:00 UTC, or a UTC day, as the plan says."""
    start = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if plan.get("window", "week") == "day":
        return start, start + timedelta(days=1)
    start -= timedelta(days=start.weekday())
    return start, start + timedelta(days=7)


# ------------------------------------------------------------------------------------------ the model, without torch


def model_schema(model_version: ModelVersion) -> dict[str, Any] | None:
    """What monitoring needs to know about the model, from its preprocessing spec (plain JSON, checked against the
    manifest's sha256): the label, its classes and positive class, and each feature typed numeric or categorical, in
    the model's order. None when the model's files cannot be read."""
    path = Path(settings.STORAGE_ROOT) / model_version.storage_path / PREPROCESS_FILE
    try:
        content = path.read_bytes()
    except OSError:
        return None
    expected = (model_version.manifest or {}).get("preprocess_sha256")
    if expected and hashlib.sha256(content).hexdigest() != expected:
        return None
    spec = json.loads(content)
    numeric = spec.get("numeric") or {}
    order = spec.get("feature_order") or [*numeric, *(spec.get("categorical") or {})]
    classes = [str(c) for c in spec.get("classes") or []]
    return {
        "label": spec.get("label"),
        "classes": classes,
        "positive_class": classes[1] if len(classes) == 2 else None,
        "features": {name: "numeric" if name in numeric else "categorical" for name in order},
    }


def training_subjects(version: Any, rows: list[int] | None) -> set[str] | None:
    """Distinct subject pseudonyms of ``rows`` (positions in the version, None: all) of a prepared version, reading
    only its subject-key column, batch by batch (derived versions carry pseudonyms there). None without one."""
    if not version.subject_key_column or not version.wrapped_key:
        return None
    import numpy as np
    import pyarrow as pa

    from apps.datasets.tables import version_batches

    wanted = np.sort(np.asarray(rows, dtype=np.int64)) if rows is not None else None
    subjects: set[str] = set()
    offset = 0
    with version_batches(version, columns=[version.subject_key_column]) as reader:
        for batch in reader:
            values = batch.column(0).cast(pa.string()).to_numpy(zero_copy_only=False)
            if wanted is not None:
                low, high = np.searchsorted(wanted, [offset, offset + len(values)])
                values = values[wanted[low:high] - offset]
            subjects.update(v for v in values if v)
            offset += batch.num_rows
    return subjects


def privacy_inputs(deployment: Deployment, now: datetime | None = None) -> dict[str, Any]:
    """The privacy monitors' inputs for a deployment's model: how many people its training rows hold and how many of
    them have since withdrawn consent for the use case's purpose or been erased or rectified
    (``apps.rights.flags.withdrawn_since_training``), the retention dates of the training
    lineage that have passed, and the dataset's privacy budget."""
    from apps.ethics.bindings import lineage
    from apps.rights.flags import withdrawn_since_training
    from apps.training.models import PrivacyBudget

    now = now or timezone.now()
    run = deployment.model_version.training_run
    version = run.dataset_version
    people = None
    subjects = training_subjects(version, (run.split or {}).get("train"))
    if subjects is not None:
        people = len(subjects)
    # One count for the model page, the review page and monitoring: withdrawals among the training rows, and people
    # erased, objecting or rectified through a data-subject request since.
    withdrawn = withdrawn_since_training(deployment.model_version, now)
    today = timezone.localdate(now)
    passed = sorted(
        {v.retention_until.isoformat() for v in lineage(version) if v.retention_until and v.retention_until <= today}
    )
    budget = PrivacyBudget.objects.filter(dataset_id=version.dataset_id).first()
    return {
        "training_people": people,
        "withdrawn_since_training": withdrawn,
        "retention_passed": passed,
        "budget": {"epsilon_cap": budget.epsilon_cap, "composed_spent": budget.composed_spent} if budget else None,
    }


def sensitive_attributes(deployment: Deployment) -> list[str]:
    """The use case's sensitive attributes: the columns a batch may add for fairness counts."""
    return list((deployment.usecase.fairness_policy or {}).get("sensitive_attributes") or [])
