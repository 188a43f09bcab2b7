"""Deploying approved models and watching them: register, promote, roll back and withdraw deployments; scoring
tokens; production batches (scored, posted, uploaded) folded into their window's sketch; late labels; the monitoring
plan; the reference fixed at training time; window evaluation; the retention sweep. Each function writes one audit
event (a batch function one per object it changes), with digests and counts only: never a row, a prediction, a
prediction id or a token's secret.

A deployment rests on an approval in force (``selectors.approval_blockers``): the board approved the model's newest
deployment review, did not revoke it, and every waiver it relied on is still in force.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.accounts.authentication import hash_token
from apps.accounts.models import Role, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.consent.services import pseudonym_secret
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.core.keys import unwrap_secret
from apps.datasets.storage import EncryptedIncomingFile
from apps.deployments import sketching
from apps.deployments.alerts import alerts_check_governance
from apps.deployments.authentication import SCORING_TOKEN_PREFIX
from apps.deployments.models import (
    Deployment,
    MonitoringReference,
    MonitoringWindow,
    PendingOutcome,
    ProductionBatch,
    RetrainingRequest,
    ScoringToken,
)
from apps.deployments.permissions import can
from apps.deployments.retraining import retraining_requests_follow
from apps.deployments.selectors import (
    approval_blockers,
    canonical_digest,
    deployment_review,
    model_schema,
    plan_in_force,
    reference_of,
    sensitive_attributes,
    waivers_relied_on,
    window_bounds,
)
from apps.ethics.services import reviews_supersede_stale
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.training.models import ModelVersion
from apps.usecases.models import UseCase
from apps.usecases.permissions import can as usecase_can
from apps.usecases.services import _write_revision
from workers.engine.datasets.crypto import open_decrypted

ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PRODUCTION = "production"
SCORE_MAX_ROWS = 10_000
MAX_REASONS = 10
READ_CHUNK_ROWS = 50_000
LIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)
WINDOW_ATTEMPTS = 3  # evaluations of one window that may fail before the rounds stop queueing it


# --------------------------------------------------------------------------------------------------------- helpers


def _require(actor: User, organisation: Any, action: str = "act", message: str = "") -> None:
    if not can(actor, "view", organisation):
        raise NotFound()
    if action == "act" and not can(actor, "act", organisation):
        raise PermissionDenied(message or "Only use-case owners and org admins manage deployments.")


def _not_approved(blockers: list[str], lead: str) -> AttestError:
    return AttestError("not_approved", f"{lead} " + " ".join(blockers), {"blockers": blockers}, status=409)


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationFailed(f"Give the reason for the {what}.", {"reason": ["A sentence or more."]})
    return reason[:500]


def _queue_reference(actor: User | None, model_version: ModelVersion) -> Job | None:
    """Queue the model's monitoring reference unless it exists or is being built (a step of the caller's event)."""
    if MonitoringReference.objects.filter(model_version=model_version).exists():
        return None
    if Job.objects.filter(kind="monitoring_reference", target_id=str(model_version.id), status__in=LIVE_JOB).exists():
        return None
    return job_create(
        actor=actor,
        organisation=model_version.organisation,
        kind="monitoring_reference",
        spec={"model_version_id": str(model_version.id)},
        target=model_version,
    )


def _digester(deployment: Deployment) -> Any:
    """HMAC-SHA256 of a prediction id under a key derived from the organisation's secret, scoped to the deployment:
    late labels find their prediction by it, and the id itself is never stored."""
    key = hashlib.sha256(b"attest-prediction-id\0" + pseudonym_secret(deployment.organisation)).digest()
    prefix = f"{deployment.id}\0".encode()
    return lambda prediction_id: hmac.new(key, prefix + prediction_id.strip().encode(), hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------------------------------- deployments


def _clean_registration(
    organisation: Any, environment: str, system: str, owner: User | None, deployed_on: Any
) -> tuple[str, str, date]:
    errors: dict[str, list[str]] = {}
    environment = (environment or "").strip().lower()
    if not ENVIRONMENT.match(environment):
        errors["environment"] = ["A short name: lower-case letters, digits and hyphens (pilot, production, ...)."]
    system = (system or "").strip()
    if not system:
        errors["system"] = ["Name the system it runs in."]
    elif len(system) > 200:
        errors["system"] = ["At most 200 characters."]
    if owner is None or not roles_in(owner, organisation) & {Role.OWNER, Role.ADMIN}:
        errors["owner"] = ["The deployment's owner must be a use-case owner or an org admin of the organisation."]
    if isinstance(deployed_on, str):
        try:
            deployed_on = date.fromisoformat(deployed_on)
        except ValueError:
            deployed_on = None
    if isinstance(deployed_on, datetime):
        deployed_on = deployed_on.date()
    if not isinstance(deployed_on, date):
        errors["deployed_on"] = ["The date it went live (YYYY-MM-DD)."]
    if errors:
        raise ValidationFailed("The deployment is incomplete.", errors)
    return environment, system, deployed_on


def deployment_register(
    *,
    actor: User,
    model_version: ModelVersion,
    environment: str,
    system: str,
    owner: User,
    deployed_on: date | str,
) -> Deployment:
    """Deploy a model version to an environment of its use case. Only a model whose approval is in force may be
    deployed (refused with every blocker listed). There is one active version per environment: deploying another
    version there is a promotion, which marks the one it replaces REPLACED and links it as ``previous``.

    In the same event: the use case's monitoring plan is snapshotted with its sha256, the monitoring reference is
    queued when the model has none, an approved retraining request that produced this model is marked promoted, and
    a use case going to production is marked in production."""
    organisation = model_version.organisation
    _require(actor, organisation, message="Only use-case owners and org admins deploy models.")
    environment, system, deployed_on = _clean_registration(organisation, environment, system, owner, deployed_on)
    blockers = approval_blockers(model_version)
    if blockers:
        raise _not_approved(blockers, f"{model_version} cannot be deployed:")
    with transaction.atomic():
        usecase = UseCase.objects.select_for_update().get(pk=model_version.usecase_id)
        if usecase.status not in (UseCase.Status.APPROVED, UseCase.Status.IN_PRODUCTION):
            raise InvalidState(
                f"{usecase.reference} is {usecase.get_status_display().lower()}: only an approved use case's models "
                "are deployed."
            )
        # Read again under the use case's lock: a revocation or an expiry may have landed meanwhile.
        blockers = approval_blockers(model_version)
        if blockers:
            raise _not_approved(blockers, f"{model_version} cannot be deployed:")
        current = (
            Deployment.objects.select_for_update()
            .filter(usecase=usecase, environment=environment, status=Deployment.Status.ACTIVE)
            .first()
        )
        if current is not None and current.model_version_id == model_version.id:
            raise InvalidState(f"{model_version} is already the active version in {environment}.")
        review = deployment_review(model_version)
        waivers = [str(w.id) for w in waivers_relied_on(review.decision)]
        plan = plan_in_force(usecase)
        now = timezone.now()
        if current is not None:
            current.status = Deployment.Status.REPLACED
            current.ended_at = now
            current.end_reason = f"Replaced by {model_version} (promotion)."
            current.save(update_fields=["status", "ended_at", "end_reason", "updated_at"])
        deployment = Deployment.objects.create(
            organisation=organisation,
            usecase=usecase,
            model_version=model_version,
            environment=environment,
            system=system,
            owner=owner,
            deployed_on=deployed_on,
            review=review,
            waivers=waivers,
            plan=plan,
            plan_sha256=canonical_digest(plan),
            previous=current,
            public_slug=secrets.token_urlsafe(18),
            created_by=actor,
        )
        job = _queue_reference(actor, model_version)
        retraining = (
            RetrainingRequest.objects.select_for_update()
            .filter(usecase=usecase, status=RetrainingRequest.Status.APPROVED)
            .filter(Q(training_run_id=model_version.training_run_id) | Q(review=review))
            .first()
        )
        if retraining is not None:
            retraining.status = RetrainingRequest.Status.PROMOTED
            retraining.save(update_fields=["status", "updated_at"])
        usecase_status = usecase.status
        if environment == PRODUCTION and usecase.status == UseCase.Status.APPROVED:
            usecase.status = UseCase.Status.IN_PRODUCTION
            usecase.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="deployment.promote" if current is not None else "deployment.register",
            target=deployment,
            after={
                "model_version": str(model_version.id),
                "model_sha256": model_version.sha256,
                "environment": environment,
                "system": system,
                "owner": str(owner.id),
                "deployed_on": deployed_on.isoformat(),
                "review": str(review.id),
                "decision": str(review.decision.id),
                "waivers": waivers,
                "plan_sha256": deployment.plan_sha256,
                "replaced": str(current.id) if current is not None else None,
                "reference_job": str(job.id) if job is not None else None,
                "retraining_request": str(retraining.id) if retraining is not None else None,
                "usecase_status": {"before": usecase_status, "after": usecase.status},
            },
        )
    return deployment


def deployment_rollback(*, actor: User, deployment: Deployment, reason: str) -> Deployment:
    """Put the version this deployment replaced back into service, in one audited action with the reason; only
    while that version's own approval is still in force. Returns the reactivated deployment."""
    _require(actor, deployment.organisation, message="Only use-case owners and org admins roll deployments back.")
    reason = _reason(reason, "rollback")
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.status != Deployment.Status.ACTIVE:
            raise InvalidState(f"Only the active deployment is rolled back; this one is {locked.get_status_display()}.")
        if locked.previous_id is None:
            raise InvalidState(f"Nothing to roll back to: this is the first deployment in {locked.environment}.")
        previous = Deployment.objects.select_for_update().select_related("model_version").get(pk=locked.previous_id)
        blockers = approval_blockers(previous.model_version)
        if blockers:
            raise _not_approved(
                blockers,
                f"Cannot roll back to {previous.model_version}: its approval is no longer in force.",
            )
        now = timezone.now()
        locked.status, locked.ended_at, locked.end_reason = Deployment.Status.ROLLED_BACK, now, reason
        locked.save(update_fields=["status", "ended_at", "end_reason", "updated_at"])
        review = deployment_review(previous.model_version)
        previous.status, previous.ended_at, previous.end_reason = Deployment.Status.ACTIVE, None, ""
        # The reactivated version rests on its approval as it stands now (which may be a later review).
        previous.review = review
        previous.waivers = [str(w.id) for w in waivers_relied_on(review.decision)]
        previous.save(update_fields=["status", "ended_at", "end_reason", "review", "waivers", "updated_at"])
        job = _queue_reference(actor, previous.model_version)
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="deployment.rollback",
            target=locked,
            after={
                "reason": reason,
                "rolled_back_model_version": str(locked.model_version_id),
                "reactivated": str(previous.id),
                "reactivated_model_version": str(previous.model_version_id),
                "review": str(review.id),
                "reference_job": str(job.id) if job is not None else None,
            },
        )
    return previous


def deployment_withdraw(*, actor: User, deployment: Deployment, reason: str) -> Deployment:
    """Take a deployment out of service (no version replaces it); its scoring tokens stop working."""
    _require(actor, deployment.organisation, message="Only use-case owners and org admins withdraw deployments.")
    reason = _reason(reason, "withdrawal")
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.status != Deployment.Status.ACTIVE:
            raise InvalidState(f"This deployment is already {locked.get_status_display().lower()}.")
        locked.status, locked.ended_at, locked.end_reason = Deployment.Status.WITHDRAWN, timezone.now(), reason
        locked.save(update_fields=["status", "ended_at", "end_reason", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="deployment.withdraw",
            target=locked,
            after={"reason": reason, "model_version": str(locked.model_version_id)},
        )
    return locked


# -------------------------------------------------------------------------------------------------- scoring tokens


def scoring_token_create(*, actor: User, deployment: Deployment, name: str) -> tuple[ScoringToken, str]:
    """A bearer token for this deployment's scoring endpoint. Returns (token, secret): the secret is shown once;
    only its sha256 is kept."""
    _require(actor, deployment.organisation, message="Only use-case owners and org admins issue scoring tokens.")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("Name the token (the system that will use it).", {"name": ["1 to 100 characters."]})
    if deployment.status != Deployment.Status.ACTIVE:
        raise InvalidState("Scoring tokens are issued for an active deployment only.")
    secret = SCORING_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ScoringToken.objects.create(
            deployment=deployment,
            name=name,
            prefix=secret[:12],
            key_hash=hash_token(secret),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            organisation=deployment.organisation,
            action="scoring_token.create",
            target=token,
            after={"deployment": str(deployment.id), "name": name, "prefix": token.prefix},
        )
    return token, secret


def scoring_token_revoke(*, actor: User, token: ScoringToken) -> ScoringToken:
    deployment = token.deployment
    _require(actor, deployment.organisation, message="Only use-case owners and org admins revoke scoring tokens.")
    with transaction.atomic():
        locked = ScoringToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise InvalidState("The token is already revoked.")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=actor,
            organisation=deployment.organisation,
            action="scoring_token.revoke",
            target=locked,
            after={"deployment": str(deployment.id), "prefix": locked.prefix},
        )
    return locked


# ------------------------------------------------------------------------------------------------ monitoring plan


def usecase_set_monitoring_plan(*, actor: User, usecase: UseCase, plan: dict[str, Any]) -> UseCase:
    """Set the use case's post-market monitoring plan (validated by the engine): a new use-case revision, like the
    other policy edits, whose hash (and the policies' digest) deployment reviews bind, so open reviews bound to the
    old plan are superseded. Running deployments keep the plan they were deployed with; a promotion takes the new one.
    """
    from workers.engine.monitoring.monitors import validate_plan  # imports scipy: kept out of the web's start-up

    if not roles_in(actor, usecase.organisation):
        raise NotFound()
    if not usecase_can(actor, "tighten_gate", usecase):
        raise PermissionDenied("Only the use case's owner or an org admin changes its monitoring plan.")
    if not isinstance(plan, dict):
        raise ValidationFailed("The monitoring plan is not valid.", {"monitoring_plan": ["an object"]})
    clean, errors = validate_plan(plan)
    if errors:
        raise ValidationFailed("The monitoring plan is not valid.", {"monitoring_plan": errors})
    with transaction.atomic():
        locked = UseCase.objects.select_for_update().get(pk=usecase.pk)
        if locked.status == UseCase.Status.RETIRED:
            raise InvalidState("A retired use case's policies no longer change.")
        before = locked.monitoring_plan
        if clean == before:
            raise InvalidState("The monitoring plan is unchanged.")
        locked.monitoring_plan = clean
        locked.revision += 1
        locked.save(update_fields=["monitoring_plan", "revision", "updated_at"])
        revision = _write_revision(locked, author=actor, changed=["monitoring_plan"], note="Monitoring plan changed")
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="usecase.monitoring_plan",
            target=locked,
            before={"plan_sha256": canonical_digest(before) if before else None},
            after={
                "plan": clean,
                "plan_sha256": canonical_digest(clean),
                "revision": locked.revision,
                "revision_sha256": revision.sha256,
            },
        )
    reviews_supersede_stale(usecase=locked, actor=actor)
    return locked


# ------------------------------------------------------------------------------------------------------ reference


def monitoring_reference_record(
    *, model_version: ModelVersion, reference: dict[str, Any], rows: int
) -> MonitoringReference:
    """Store the reference the reference job built from the model's training rows (aggregates only). A second
    delivery of the job finds it stored and records nothing."""
    existing = reference_of(model_version)
    if existing is not None:
        return existing
    digest = canonical_digest(reference)
    with transaction.atomic():
        try:
            with transaction.atomic():
                item = MonitoringReference.objects.create(
                    model_version=model_version, reference=reference, sha256=digest, rows=rows
                )
        except IntegrityError:  # built meanwhile by a scoring job that needed it
            return MonitoringReference.objects.get(model_version=model_version)
        audit_record(
            actor=None,
            organisation=model_version.organisation,
            action="monitoring.reference",
            target=item,
            after={"model_version": str(model_version.id), "sha256": digest, "rows": rows},
        )
    return item


# ------------------------------------------------------------------------------------------------ production data


def _raw_relative_path(deployment: Deployment, file_id: uuid.UUID) -> str:
    return f"deployments/{deployment.organisation_id}/{deployment.id}/{file_id}.enc"


def _storage(relative: str) -> Path:
    return Path(settings.STORAGE_ROOT) / relative


def _delete_raw(batch: ProductionBatch) -> None:
    if batch.storage_path:
        _storage(batch.storage_path).unlink(missing_ok=True)


def open_batch_rows(batch: ProductionBatch) -> Any:
    """The plaintext of a batch's stored rows, as a stream (the file id is its name)."""
    if not batch.storage_path or not batch.wrapped_key:
        raise InvalidState("The rows of this batch are not kept.")
    path = _storage(batch.storage_path)
    return open_decrypted(path, unwrap_secret(bytes(batch.wrapped_key).decode("ascii")), uuid.UUID(path.stem))


def _read_head(incoming: Any, rows: int = 2_000) -> Any:
    with incoming.open() as reader:
        try:
            return pd.read_csv(reader, nrows=rows)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"The batch is not a readable CSV: {exc}. Nothing was kept.") from None


def _batch_receive(*, actor: User, deployment: Deployment, incoming: Any, sha256: str, source: str) -> ProductionBatch:
    """Check a batch's columns against the model (refused, with the columns at fault, and nothing kept, when they
    do not fit), store it encrypted and queue its processing."""
    try:
        _require(actor, deployment.organisation, message="Only use-case owners and org admins send production data.")
        if deployment.status != Deployment.Status.ACTIVE:
            raise InvalidState("Production data is accepted for an active deployment only.")
        if incoming.size == 0:
            raise ValidationFailed("The batch is empty. Nothing was kept.")
        reference = reference_of(deployment.model_version)
        schema = model_schema(deployment.model_version)
        if reference is None or schema is None:
            raise InvalidState(
                f"The monitoring reference of {deployment.model_version} is still being built; send the batch again "
                "in a few minutes. Nothing was kept."
            )
        head = _read_head(incoming)
        problems = sketching.schema_problems(
            reference.reference, head, sensitive=sensitive_attributes(deployment), needs_prediction=True
        )
        if problems:
            raise ValidationFailed(
                "The batch's columns do not fit the model: " + "; ".join(problems) + ". Nothing was kept.",
                {"columns": problems},
            )
        resent = ProductionBatch.objects.filter(
            deployment=deployment,
            sha256=sha256,
            source__in=[ProductionBatch.Source.POSTED, ProductionBatch.Source.UPLOADED],
        ).exclude(job__status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
        if resent.exists():
            raise AttestError("conflict", "This batch was received already; it is not counted twice.", status=409)
    except BaseException:
        incoming.discard()
        raise
    relative = _raw_relative_path(deployment, incoming.file_id)
    try:
        with transaction.atomic():
            batch = ProductionBatch.objects.create(
                id=incoming.file_id,
                organisation=deployment.organisation,
                deployment=deployment,
                source=source,
                received_at=timezone.now(),
                sha256=sha256,
                storage_path=relative,
                wrapped_key=incoming.wrapped_key().encode("ascii"),
                created_by=actor,
            )
            job = job_create(
                actor=actor,
                organisation=deployment.organisation,
                kind="production_batch",
                spec={"batch_id": str(batch.id)},
                target=batch,
            )
            batch.job = job
            batch.save(update_fields=["job"])
            destination = _storage(relative)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(incoming.path, destination)
            audit_record(
                actor=actor,
                organisation=deployment.organisation,
                action="production_batch.receive",
                target=batch,
                after={
                    "deployment": str(deployment.id),
                    "source": source,
                    "sha256": sha256,
                    "bytes": incoming.size,
                    "job": str(job.id),
                },
            )
    except BaseException:
        incoming.discard()
        _storage(relative).unlink(missing_ok=True)
        raise
    return batch


def production_batch_post(*, actor: User, deployment: Deployment, incoming: Any, sha256: str) -> ProductionBatch:
    """A batch posted through the API (features, prediction, prediction_id, optional sensitive attributes and
    label), encrypted as it arrived (a closed ``apps.datasets.storage.EncryptedIncomingFile`` and the sha256 of its
    plaintext)."""
    return _batch_receive(
        actor=actor, deployment=deployment, incoming=incoming, sha256=sha256, source=ProductionBatch.Source.POSTED
    )


def production_batch_upload(*, actor: User, deployment: Deployment, uploaded_file: Any) -> ProductionBatch:
    """A batch uploaded in the portal. ``uploaded_file`` is what the upload policy's handler gave the view: an
    encrypted upload (``apps.datasets.uploads.EncryptingUploadHandler``, recommended) or a small file in memory."""
    incoming, sha256 = getattr(uploaded_file, "incoming", None), getattr(uploaded_file, "sha256", "")
    if incoming is None:
        incoming = EncryptedIncomingFile()
        try:
            for chunk in uploaded_file.chunks():
                incoming.write(chunk)
            sha256 = incoming.close()
        except BaseException:
            incoming.discard()
            raise
    return _batch_receive(
        actor=actor, deployment=deployment, incoming=incoming, sha256=sha256, source=ProductionBatch.Source.UPLOADED
    )


def _window_for(deployment: Deployment, at: datetime) -> MonitoringWindow:
    """The window holding ``at`` (created on first use; a concurrent creation finds the other's row)."""
    starts_at, ends_at = window_bounds(deployment.plan, at)
    window, _ = MonitoringWindow.objects.get_or_create(
        deployment=deployment,
        starts_at=starts_at,
        defaults={"organisation_id": deployment.organisation_id, "ends_at": ends_at},
    )
    return window


def _fold_into_window(
    batch: ProductionBatch, window: MonitoringWindow, reference: MonitoringReference, fold: sketching.Fold
) -> None:
    """Add a batch's sketch to its window under the window's row lock, so concurrent batches never lose counts.
    A window already evaluated is opened again: the next round evaluates it with the late rows."""
    locked = MonitoringWindow.objects.select_for_update().get(pk=window.pk)
    sketch = sketching.sketch_of(reference.reference, locked.sketch).merge(fold.sketch)
    locked.sketch = sketch.to_dict()
    locked.rows += fold.rows
    locked.labelled_rows += fold.labelled
    locked.status = MonitoringWindow.Status.OPEN
    locked.save(update_fields=["sketch", "rows", "labelled_rows", "status", "updated_at"])


def _store_pending(batch: ProductionBatch, window: MonitoringWindow, fold: sketching.Fold, expires_on: date) -> int:
    pending = fold.take_pending()
    created = PendingOutcome.objects.bulk_create(
        [
            PendingOutcome(
                deployment_id=batch.deployment_id,
                window=window,
                prediction_digest=digest,
                predicted=predicted,
                groups=groups,
                expires_on=expires_on,
            )
            for digest, predicted, groups in pending
        ],
        ignore_conflicts=True,  # the same prediction id sent twice waits once
        batch_size=5_000,
    )
    return len(created)


def _keep_or_drop_raw(batch: ProductionBatch, plan: dict[str, Any], today: date) -> None:
    """Raw rows stay (encrypted, until ``retain_until``) only when the plan allows it; otherwise the file goes now."""
    if plan.get("keep_raw_rows") and batch.storage_path:
        batch.retain_until = today + timedelta(days=int(plan.get("raw_retention_days") or 30))
        return
    _delete_raw(batch)
    batch.storage_path, batch.wrapped_key, batch.retain_until = "", None, None


def _accept(
    batch: ProductionBatch,
    window: MonitoringWindow,
    reference: MonitoringReference,
    fold: sketching.Fold,
    *,
    pending: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    plan = batch.deployment.plan
    today = timezone.localdate()
    _fold_into_window(batch, window, reference, fold)
    _keep_or_drop_raw(batch, plan, today)
    batch.status = ProductionBatch.Status.ACCEPTED
    batch.rows, batch.window = fold.rows, window
    batch.save()
    summary = {
        "deployment": str(batch.deployment_id),
        "window": str(window.id),
        "rows": fold.rows,
        "labelled": fold.labelled,
        "awaiting_labels": pending,
        "raw_rows_kept_until": batch.retain_until.isoformat() if batch.retain_until else None,
        **(extra or {}),
    }
    audit_record(
        actor=None,
        organisation=batch.organisation,
        action="production_batch.accept",
        target=batch,
        after=summary,
        request_id=batch.job.request_id if batch.job else None,
    )
    return summary


def _csv_chunks(stream: Any) -> Iterator[Any]:
    try:
        yield from pd.read_csv(stream, chunksize=READ_CHUNK_ROWS)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"The batch is not a readable CSV: {exc}. Nothing was kept.") from None


def production_batch_process(*, batch: ProductionBatch, progress: Any = None) -> dict[str, Any]:
    """The production-batch job's body: fold a posted or uploaded batch into its window, chunk by chunk, and record
    the predictions that wait for labels. One transaction: a batch whose rows turn out wrong leaves no count."""
    batch = ProductionBatch.objects.select_related("deployment__model_version", "deployment__usecase").get(pk=batch.pk)
    if batch.status == ProductionBatch.Status.ACCEPTED:
        return {"rows": batch.rows, "already_accepted": True}
    deployment = batch.deployment
    reference = reference_of(deployment.model_version)
    schema = model_schema(deployment.model_version)
    if reference is None or schema is None:
        raise InvalidState(f"The monitoring reference of {deployment.model_version} is missing.")
    window = _window_for(deployment, batch.received_at)
    fold = sketching.empty_fold(reference.reference)
    expires_on = timezone.localdate() + timedelta(days=int(deployment.plan.get("raw_retention_days") or 30))
    digest, sensitive = _digester(deployment), sensitive_attributes(deployment)
    pending = 0
    with transaction.atomic():
        with open_batch_rows(batch) as stream:
            for frame in _csv_chunks(stream):
                problems = sketching.schema_problems(
                    reference.reference, frame, sensitive=sensitive, needs_prediction=True
                )
                if problems:
                    raise ValidationFailed("The batch's columns do not fit the model: " + "; ".join(problems) + ".")
                sketching.fold_frame(fold, frame, schema=schema, sensitive=sensitive, digest=digest)
                pending += _store_pending(batch, window, fold, expires_on)
                if progress:
                    progress(0.9, f"{fold.rows:,} rows folded into the window")
        return _accept(batch, window, reference, fold, pending=pending)


def production_batch_discard(*, batch: ProductionBatch) -> None:
    """The production-batch job's failure hook: a batch that could not be processed keeps nothing (its encrypted
    rows are deleted; the job row says why). File housekeeping, not audited: the job's end is."""
    batch = ProductionBatch.objects.filter(pk=batch.pk).first()
    if batch is None or batch.status == ProductionBatch.Status.ACCEPTED:
        return
    _delete_raw(batch)
    ProductionBatch.objects.filter(pk=batch.pk).update(storage_path="", wrapped_key=None, updated_at=timezone.now())


def labels_record(*, actor: User, deployment: Deployment, labels: list[dict[str, Any]]) -> ProductionBatch:
    """Late ground truth: each (prediction_id, label) finds its waiting prediction through the HMAC of the id and is
    counted in that prediction's window; ids that match nothing are counted and reported, never dropped silently.
    The ids themselves are neither stored nor audited."""
    _require(actor, deployment.organisation, message="Only use-case owners and org admins send labels.")
    if not isinstance(labels, list) or not labels:
        raise ValidationFailed("Send at least one label.", {"labels": ["a list of {prediction_id, label}"]})
    errors = [
        f"item {i}"
        for i, item in enumerate(labels, start=1)
        if not isinstance(item, dict) or not str(item.get("prediction_id") or "").strip() or item.get("label") is None
    ]
    if errors:
        raise ValidationFailed("Each label needs a prediction_id and a label.", {"labels": errors[:20]})
    digest = _digester(deployment)
    by_digest: dict[str, Any] = {}
    for item in labels:
        by_digest[digest(str(item["prediction_id"]))] = item["label"]  # a repeated id counts once, its last label
    schema = model_schema(deployment.model_version)
    reference = reference_of(deployment.model_version)
    payload = hashlib.sha256(
        "\n".join(f"{d}:{by_digest[d]}" for d in sorted(by_digest)).encode()
    ).hexdigest()  # a digest of digests: the ids never enter it
    with transaction.atomic():
        waiting = list(
            PendingOutcome.objects.select_for_update()
            .filter(deployment=deployment, prediction_digest__in=list(by_digest))
            .order_by("window_id")
        )
        matched = len(waiting)
        if waiting and (schema is None or reference is None):
            raise InvalidState(f"The monitoring reference of {deployment.model_version} is missing.")
        touched = []
        for window_id in sorted({p.window_id for p in waiting}, key=str):
            rows = [p for p in waiting if p.window_id == window_id]
            codes = sketching.encode_classes(
                pd.Series([by_digest[p.prediction_digest] for p in rows]), schema["classes"], "label"
            )
            predictions = np.array([p.predicted for p in rows], dtype=np.int64)
            window = MonitoringWindow.objects.select_for_update().get(pk=window_id)
            sketch = sketching.sketch_of(reference.reference, window.sketch)
            sketch.add_labels(predictions, codes, sketching.group_frame([p.groups for p in rows]))
            window.sketch = sketch.to_dict()
            window.labelled_rows += len(rows)
            window.status = MonitoringWindow.Status.OPEN
            window.save(update_fields=["sketch", "labelled_rows", "status", "updated_at"])
            touched.append(str(window_id))
        PendingOutcome.objects.filter(pk__in=[p.pk for p in waiting]).delete()
        batch = ProductionBatch.objects.create(
            organisation=deployment.organisation,
            deployment=deployment,
            source=ProductionBatch.Source.LABELS,
            status=ProductionBatch.Status.ACCEPTED,
            received_at=timezone.now(),
            sha256=payload,
            rows=len(by_digest),
            labels_matched=matched,
            labels_unknown=len(by_digest) - matched,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            organisation=deployment.organisation,
            action="production_batch.labels",
            target=batch,
            after={
                "deployment": str(deployment.id),
                "received": len(labels),
                "distinct": len(by_digest),
                "matched": matched,
                "unknown": batch.labels_unknown,
                "windows": touched,
                "sha256": payload,
            },
        )
    return batch


# --------------------------------------------------------------------------------------------------------- scoring


def deployment_score_request(
    *, token: ScoringToken, deployment: Deployment, csv_text: str, reasons: int = 0
) -> ProductionBatch:
    """Queue a batch for scoring by the deployment's model (on the gpu queue; the web never loads the model). The
    rows and, later, the predictions stay on the job row; the audit event keeps the batch's digest and counts."""
    if token.deployment_id != deployment.id or token.revoked_at is not None:
        raise AttestError("not_authenticated", "This token does not open this deployment's scoring.")
    if deployment.status != Deployment.Status.ACTIVE:
        raise InvalidState(f"This deployment is {deployment.get_status_display().lower()}: it scores nothing.")
    if not isinstance(reasons, int) or not 0 <= reasons <= MAX_REASONS:
        raise ValidationFailed(f"reasons is a number from 0 to {MAX_REASONS}.", {"reasons": ["out of range"]})
    lines = [line for line in csv_text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValidationFailed("Send a header and at least one row to score.")
    if len(lines) - 1 > SCORE_MAX_ROWS:
        raise ValidationFailed(f"Score at most {SCORE_MAX_ROWS:,} rows at a time.", {"rows": [str(len(lines) - 1)]})
    sha256 = hashlib.sha256(csv_text.encode("utf-8")).hexdigest()
    with transaction.atomic():
        batch = ProductionBatch.objects.create(
            organisation=deployment.organisation,
            deployment=deployment,
            source=ProductionBatch.Source.SCORING,
            received_at=timezone.now(),
            sha256=sha256,
        )
        job = job_create(
            actor=None,
            organisation=deployment.organisation,
            kind="deployment_scoring",
            spec={
                "deployment_id": str(deployment.id),
                "batch_id": str(batch.id),
                "csv": csv_text,
                "reasons": reasons,
            },
            target=batch,
        )
        batch.job = job
        batch.save(update_fields=["job"])
        audit_record(
            actor=None,
            organisation=deployment.organisation,
            action="deployment.score_request",
            target=batch,
            after={
                "deployment": str(deployment.id),
                "token": token.prefix,
                "job": str(job.id),
                "batch_sha256": sha256,
                "rows": len(lines) - 1,
                "reasons": reasons,
            },
        )
    return batch


def scored_batch_record(*, batch: ProductionBatch, frame: Any, scores: Any) -> dict[str, Any]:
    """The scoring job's last step: fold the scored rows (features, the model's prediction and score, the prediction
    id, sensitive attributes when sent) into the window, keep them encrypted only when the plan allows it, and wait
    for their labels."""
    batch = ProductionBatch.objects.select_related("deployment__model_version", "deployment__usecase", "job").get(
        pk=batch.pk
    )
    if batch.status == ProductionBatch.Status.ACCEPTED:
        return {"rows": batch.rows, "already_accepted": True}
    deployment = batch.deployment
    reference = reference_of(deployment.model_version)
    schema = model_schema(deployment.model_version)
    if reference is None or schema is None:
        raise InvalidState(f"The monitoring reference of {deployment.model_version} is missing.")
    window = _window_for(deployment, batch.received_at)
    fold = sketching.empty_fold(reference.reference)
    expires_on = timezone.localdate() + timedelta(days=int(deployment.plan.get("raw_retention_days") or 30))
    sensitive = sensitive_attributes(deployment)
    written = None
    if deployment.plan.get("keep_raw_rows"):
        written = _write_raw(deployment, frame[[c for c in frame.columns if c != "label"]])
    try:
        with transaction.atomic():
            sketching.fold_frame(
                fold, frame, schema=schema, sensitive=sensitive, digest=_digester(deployment), scores=scores
            )
            pending = _store_pending(batch, window, fold, expires_on)
            if written is not None:
                batch.storage_path, batch.wrapped_key = written
            return _accept(batch, window, reference, fold, pending=pending, extra={"scored": True})
    except BaseException:
        if written is not None:
            _storage(written[0]).unlink(missing_ok=True)
        raise


def _write_raw(deployment: Deployment, frame: Any) -> tuple[str, bytes]:
    incoming = EncryptedIncomingFile()
    try:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        incoming.write(buffer.getvalue().encode("utf-8"))
        incoming.close()
        relative = _raw_relative_path(deployment, incoming.file_id)
        destination = _storage(relative)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming.path, destination)
    except BaseException:
        incoming.discard()
        raise
    return relative, incoming.wrapped_key().encode("ascii")


# ------------------------------------------------------------------------------------------------------- windows


def monitoring_window_record(*, window: MonitoringWindow, results: list[dict[str, Any]]) -> MonitoringWindow:
    """Store a window's evaluation (one result per monitor). The event keeps how many monitors passed, warned,
    failed or had too little data, never the rows."""
    with transaction.atomic():
        locked = MonitoringWindow.objects.select_for_update().get(pk=window.pk)
        locked.results = results
        locked.status = MonitoringWindow.Status.EVALUATED
        locked.evaluated_at = timezone.now()
        locked.save(update_fields=["results", "status", "evaluated_at", "updated_at"])
        counts: dict[str, int] = {}
        for result in results:
            counts[result.get("status", "unknown")] = counts.get(result.get("status", "unknown"), 0) + 1
        audit_record(
            actor=None,
            organisation=locked.organisation,
            action="monitoring.window_evaluate",
            target=locked,
            after={
                "deployment": str(locked.deployment_id),
                "starts_at": locked.starts_at.isoformat(),
                "rows": locked.rows,
                "labelled_rows": locked.labelled_rows,
                "statuses": counts,
                "failing": sorted(r["monitor"] for r in results if r.get("status") == "fail"),
                "results_sha256": canonical_digest(results),
            },
            request_id=locked.job.request_id if locked.job else None,
        )
    return locked


def monitoring_windows_close_due(*, now: datetime | None = None) -> list[MonitoringWindow]:
    """The hourly round's first step: queue the evaluation of every collecting window whose end has passed (one
    event per window). An active deployment's last window is evaluated even when no row arrived in it, since a week
    without data is itself worth seeing."""
    now = now or timezone.now()
    monitored = Deployment.objects.filter(
        status=Deployment.Status.ACTIVE, model_version__monitoring_reference__isnull=False
    )
    for deployment in monitored:
        starts_at, _ends_at = window_bounds(deployment.plan, now)
        previous_start, previous_end = window_bounds(deployment.plan, starts_at - timedelta(seconds=1))
        if deployment.created_at < previous_end:
            MonitoringWindow.objects.get_or_create(
                deployment=deployment,
                starts_at=previous_start,
                defaults={"organisation_id": deployment.organisation_id, "ends_at": previous_end},
            )
    due = list(
        MonitoringWindow.objects.filter(status=MonitoringWindow.Status.OPEN, ends_at__lte=now).select_related("job")
    )
    failures = dict(
        Job.objects.filter(kind="monitoring_window", target_id__in=[str(window.id) for window in due])
        .exclude(status__in=[*LIVE_JOB, Job.Status.SUCCEEDED])
        .values("target_id")
        .annotate(n=Count("id"))
        .values_list("target_id", "n")
    )
    queued = []
    for window in due:
        if window.job is not None and window.job.status in LIVE_JOB:
            continue
        if failures.get(str(window.id), 0) >= WINDOW_ATTEMPTS:
            continue  # it keeps failing: its job rows say why, and the rounds stop spending work on it
        with transaction.atomic():
            locked = MonitoringWindow.objects.select_for_update().get(pk=window.pk)
            if locked.status != MonitoringWindow.Status.OPEN:
                continue
            job = job_create(
                actor=None,
                organisation=locked.organisation,
                kind="monitoring_window",
                spec={"window_id": str(locked.id)},
                target=locked,
            )
            locked.job = job
            locked.save(update_fields=["job", "updated_at"])
            audit_record(
                actor=None,
                organisation=locked.organisation,
                action="monitoring.window_close",
                target=locked,
                after={"deployment": str(locked.deployment_id), "rows": locked.rows, "job": str(job.id)},
            )
        queued.append(locked)
    return queued


# ------------------------------------------------------------------------------------------------------ retention


def production_data_sweep(*, today: date | None = None, now: datetime | None = None) -> dict[str, int]:
    """Delete what monitoring keeps only for a while: raw batch rows past their ``retain_until``, predictions whose
    labels never came before they expired, and the rows and predictions on finished scoring jobs older than
    ``SCORING_RESULT_RETENTION_HOURS``. Each sweep writes one event per organisation whose data it removed (each chain
    records its own), with the counts."""
    today = today or timezone.localdate()
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.SCORING_RESULT_RETENTION_HOURS)
    expired_files = ProductionBatch.objects.filter(retain_until__lt=today).exclude(storage_path="")
    expired_outcomes = PendingOutcome.objects.filter(expires_on__lt=today)
    old_payloads = Job.objects.filter(kind="deployment_scoring", finished_at__lt=cutoff).exclude(spec={})
    organisations = (
        set(expired_files.values_list("organisation_id", flat=True))
        | set(expired_outcomes.values_list("deployment__organisation_id", flat=True))
        | set(old_payloads.values_list("organisation_id", flat=True))
    )
    totals = {"raw_files_deleted": 0, "pending_outcomes_expired": 0, "scoring_payloads_removed": 0}
    for organisation_id in sorted(organisations, key=str):
        with transaction.atomic():
            batches = list(expired_files.filter(organisation_id=organisation_id).select_for_update())
            for batch in batches:
                _delete_raw(batch)
            counts = {
                "raw_files_deleted": ProductionBatch.objects.filter(pk__in=[b.pk for b in batches]).update(
                    storage_path="", wrapped_key=None, retain_until=None, updated_at=now
                ),
                "pending_outcomes_expired": expired_outcomes.filter(
                    deployment__organisation_id=organisation_id
                ).delete()[0],
                "scoring_payloads_removed": old_payloads.filter(organisation_id=organisation_id).update(
                    spec={}, result=None, updated_at=now
                ),
            }
            audit_record(
                actor=None,
                organisation=organisation_id,
                action="monitoring.retention_sweep",
                after={**counts, "as_of": today.isoformat()},
            )
        for key, value in counts.items():
            totals[key] += value
    return totals


def monitoring_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """The hourly beat round: queue the evaluation of windows that have ended, sweep expired production data, and
    let the alerts module check approvals and waivers of running deployments."""
    queued = monitoring_windows_close_due(now=now)
    swept = production_data_sweep(now=now)
    governance = alerts_check_governance(now=now)
    # Retraining requests follow their run, its evaluation and the board's review of the model it produced.
    followed = retraining_requests_follow()
    return {
        "windows_queued": len(queued),
        **swept,
        "governance": len(governance),
        "retraining_moved": len(followed),
    }
