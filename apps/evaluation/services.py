"""Requesting evaluations and recording their results (computed by the worker's engine)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, NotFound, PermissionDenied
from apps.datasets.models import DatasetVersion
from apps.evaluation.models import Evaluation
from apps.evaluation.permissions import can
from apps.training.models import ModelVersion


def evaluation_queue(
    *, actor: User | None, model_version: ModelVersion, dataset_version: DatasetVersion | None = None, seed: int = 0
) -> Evaluation:
    """Create the evaluation row and its job, without an audit event of its own: for services that name the
    evaluation in their own event (a finished training run queues its held-out evaluation)."""
    from apps.jobs.services import job_create
    from apps.usecases.models import UseCase

    organisation = model_version.organisation
    run = model_version.training_run
    kind = Evaluation.Kind.HELD_OUT
    if dataset_version is None or dataset_version.pk == run.dataset_version_id:
        dataset_version = run.dataset_version
    else:
        kind = Evaluation.Kind.EXTERNAL
        if dataset_version.dataset.organisation_id != organisation.pk:
            raise NotFound()
        needed = set(run.spec["features"]) | {run.spec["label"]}
        missing = sorted(needed - set(dataset_version.column_names))
        if missing:
            raise AttestError(
                "invalid",
                f"The test set lacks the model's columns: {', '.join(missing)}.",
                {"missing_columns": missing},
            )
    usecase = UseCase.objects.get(pk=model_version.usecase_id)  # the policy as it is now, not as cached
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            organisation=organisation,
            model_version=model_version,
            dataset_version=dataset_version,
            kind=kind,
            created_by=actor,
            seed=seed,
            policy=usecase.fairness_policy or {},
            policy_revision=usecase.revision,
        )
        evaluation.job = job_create(
            actor=actor,
            organisation=organisation,
            kind="evaluation",
            spec={"evaluation_id": str(evaluation.id)},
            target=evaluation,
        )
        evaluation.save(update_fields=["job"])
    return evaluation


def evaluation_request(
    *, actor: User | None, model_version: ModelVersion, dataset_version: DatasetVersion | None = None, seed: int = 0
) -> Evaluation:
    """Queue an evaluation: on the run's held-out rows, or on another version with a compatible schema."""
    organisation = model_version.organisation
    if actor is not None:
        if not roles_in(actor, organisation):
            raise NotFound()
        if not can(actor, "request", organisation):
            raise PermissionDenied("Only use-case owners and org admins request evaluations.")
    with transaction.atomic():
        evaluation = evaluation_queue(
            actor=actor, model_version=model_version, dataset_version=dataset_version, seed=seed
        )
        audit_record(
            actor=actor,
            organisation=organisation,
            action="evaluation.request",
            target=evaluation,
            after={
                "model_version": str(model_version.id),
                "model_sha256": model_version.sha256,
                "dataset_version": str(evaluation.dataset_version_id),
                "kind": evaluation.kind,
                "policy_revision": evaluation.policy_revision,
                "job": str(evaluation.job_id),
            },
        )
    return evaluation


def evaluation_record(
    *, evaluation: Evaluation, results: dict[str, Any], audit: dict[str, Any], privacy_cost: list[dict[str, Any]]
) -> Evaluation:
    with transaction.atomic():
        evaluation.results, evaluation.audit, evaluation.privacy_cost = results, audit, privacy_cost
        evaluation.verdict = results.get("verdict", "")
        evaluation.status = Evaluation.Status.SUCCEEDED
        evaluation.save()
        audit_record(
            actor=None,
            organisation=evaluation.organisation,
            action="evaluation.record",
            target=evaluation,
            after={
                "verdict": evaluation.verdict,
                "gates": results.get("gates"),
                # Aggregates only, as the fairness gates: never an attribution or a prediction of one person.
                "robustness_gates": [
                    {key: gate.get(key) for key in ("kind", "level", "metric", "max", "value", "status")}
                    for gate in results.get("robustness_gates") or []
                ],
                "audit": {
                    k: audit.get(k)
                    for k in ("auc", "empirical_epsilon_lower_bound", "proven_epsilon", "accounting_fault")
                },
            },
        )
    from apps.ethics.services import reviews_supersede_stale

    # A newer evaluation replaces the one open deployment reviews are bound to.
    reviews_supersede_stale(usecase=evaluation.model_version.usecase, actor=None)
    return evaluation
