"""Tracing a person from their pseudonym to every consent record, dataset version, model, evaluation, report and
deployment that holds or used their data. Reads only: the index of each version answers which rows are theirs, so no
whole file is decrypted; split membership comes from the row positions each training run recorded."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.consent.models import ConsentRecord, DataSubject
from apps.deployments.models import Deployment
from apps.evaluation.models import Evaluation
from apps.jobs.lifecycle import LIVE
from apps.reports.models import Report
from apps.rights.models import SubjectRequest
from apps.training.models import ModelVersion, TrainingRun

SPLIT_PARTS = ("train", "validation", "test")


def split_membership(split: dict[str, Any], positions: list[int]) -> dict[str, int]:
    """How many of the person's row positions fell in each part of a run's recorded split."""
    mine = set(positions)
    return {part: sum(1 for index in split.get(part, []) if index in mine) for part in SPLIT_PARTS}


def _privacy(run: TrainingRun) -> tuple[float | None, float | None]:
    privacy = run.privacy or {}
    return privacy.get("epsilon"), privacy.get("delta")


def is_private(model_version: ModelVersion) -> bool:
    """Trained under a differential-privacy guarantee (an epsilon was recorded and it is not a baseline)."""
    epsilon, _delta = _privacy(model_version.training_run)
    return not model_version.non_private and not model_version.training_run.non_private and epsilon is not None


def runs_in_progress(version_ids: list[Any]) -> list[TrainingRun]:
    """Training runs on these versions that have no outcome yet and whose job is queued or running."""
    return list(
        TrainingRun.objects.filter(
            dataset_version_id__in=version_ids, status=TrainingRun.Status.PENDING, job__status__in=LIVE
        ).select_related("dataset_version__dataset")
    )


def trace_compute(request: SubjectRequest) -> dict[str, Any]:
    """The trace of ``request``'s pseudonym as it stands now: pseudonyms, ids and counts, never a data value."""
    from apps.datasets.subjects import versions_holding

    organisation = request.organisation
    pseudonym = request.pseudonym
    subject = request.subject or DataSubject.objects.filter(organisation=organisation, pseudonym=pseudonym).first()
    consent = []
    if subject is not None:
        consent = [
            {"purpose": r.purpose, "status": r.status, "occurred_at": r.occurred_at.isoformat()}
            for r in ConsentRecord.objects.filter(subject=subject).order_by("occurred_at")
        ]
    holdings = versions_holding(organisation, [pseudonym]).get(pseudonym, [])
    positions = {holding.version.pk: list(holding.positions) for holding in holdings}
    versions = [
        {
            "version_id": str(h.version.pk),
            "dataset_id": str(h.version.dataset_id),
            "dataset": h.version.dataset.name,
            "number": h.version.number,
            "kind": h.version.kind,
            "sha256": h.version.sha256,
            "rows": len(h.positions),
        }
        for h in holdings
    ]
    runs = TrainingRun.objects.filter(dataset_version_id__in=list(positions)).select_related("usecase")
    models = []
    model_ids = []
    for run in runs.filter(status=TrainingRun.Status.SUCCEEDED).order_by("created_at"):
        model_version = ModelVersion.objects.filter(training_run=run).first()
        if model_version is None:
            continue
        epsilon, delta = _privacy(run)
        model_ids.append(model_version.pk)
        models.append(
            {
                "model_version_id": str(model_version.pk),
                "number": model_version.number,
                "usecase": run.usecase.title,
                "usecase_id": str(run.usecase_id),
                "training_run_id": str(run.pk),
                "dataset_version_id": str(run.dataset_version_id),
                "private": is_private(model_version),
                "epsilon": epsilon,
                "delta": delta,
                "split": split_membership(run.split or {}, positions[run.dataset_version_id]),
            }
        )
    in_progress = runs_in_progress(list(positions))
    evaluations = [
        {"evaluation_id": str(e.pk), "model_version_id": str(e.model_version_id), "status": e.status}
        for e in Evaluation.objects.filter(model_version_id__in=model_ids).order_by("created_at")
    ]
    earlier_requests = SubjectRequest.objects.filter(organisation=organisation, pseudonym=pseudonym).exclude(
        pk=request.pk
    )
    reports = Report.objects.filter(organisation=organisation, superseded_by__isnull=True).filter(
        Q(model_version_id__in=model_ids)
        | Q(subject_type="datasets.datasetversion", subject_id__in=[str(v) for v in positions])
        | Q(
            kind=Report.Kind.SUBJECT_ACCESS,
            subject_type="rights.subjectrequest",
            subject_id__in=[str(pk) for pk in earlier_requests.values_list("pk", flat=True)],
        )
    )
    deployments = Deployment.objects.filter(model_version_id__in=model_ids)
    return {
        "pseudonym": pseudonym,
        "subject_known": subject is not None,
        "consent": consent,
        "versions": versions,
        "models": models,
        "runs_in_progress": [
            {"training_run_id": str(run.pk), "dataset_version_id": str(run.dataset_version_id)} for run in in_progress
        ],
        "evaluations": evaluations,
        "reports": [
            {"report_id": str(r.pk), "reference": r.reference, "kind": r.kind, "subject_label": r.subject_label}
            for r in reports.order_by("created_at")
        ],
        "deployments": [
            {
                "deployment_id": str(d.pk),
                "model_version_id": str(d.model_version_id),
                "environment": d.environment,
                "status": d.status,
            }
            for d in deployments.order_by("created_at")
        ],
        "found": bool(subject is not None or versions),
        "traced_at": timezone.now().isoformat(),
    }
