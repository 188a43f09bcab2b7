"""Flags on models trained on data that has since been withdrawn, erased or rectified, and the supersession of reports
that embed data a request changed.

``withdrawn_since_training`` is the one count the model page, the board's review page and post-market monitoring
(``apps.deployments.selectors.privacy_inputs``) all show. It is the union of two sets of pseudonyms, so nobody is
counted twice:

- people among the model's training rows whose latest consent event for the use case's purpose is no longer
  "granted" (everyone in a prepared version had consent at its snapshot, so that is a withdrawal since). Candidates
  come from the consent records, and their rows are found through the training version's encrypted pseudonym index
  (``apps.datasets.subjects.positions_in_version``), never by decrypting the whole file;
- people of completed erasure, objection or rectification requests whose trace shows the model trained on their rows
  (``trace["models"][i]["split"]["train"] > 0``). The trace was taken before execution, so an erased person still
  counts once erasure has destroyed the training version and its index.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.reports.models import Report
from apps.rights.models import ReportSupersession, SubjectRequest
from apps.training.models import ModelVersion

# Kinds whose completion changes the data a model was trained on (access changes nothing).
CHANGING_KINDS = (SubjectRequest.Kind.ERASURE, SubjectRequest.Kind.OBJECTION, SubjectRequest.Kind.RECTIFICATION)


def _trained_on(trace: dict[str, Any], model_version: ModelVersion) -> bool:
    ids = {str(model_version.id)}
    if model_version.parent_id:  # a mitigated candidate is trained on its parent's rows
        ids.add(str(model_version.parent_id))
    for entry in trace.get("models") or []:
        if str(entry.get("model_version_id")) in ids and int((entry.get("split") or {}).get("train") or 0) > 0:
            return True
    return False


def changed_by_requests(model_version: ModelVersion) -> set[str]:
    """Pseudonyms of completed erasure, objection and rectification requests whose trace lists the model as trained
    on the person's rows."""
    requests = SubjectRequest.objects.filter(
        organisation_id=model_version.organisation_id,
        kind__in=CHANGING_KINDS,
        status=SubjectRequest.Status.COMPLETED,
        completed_at__gte=model_version.created_at,
    ).only("pseudonym", "trace", "kind", "purposes")
    purpose = model_version.usecase.purpose
    return {
        r.pseudonym
        for r in requests
        if _trained_on(r.trace or {}, model_version)
        # An objection to other purposes leaves this use case's data alone (no purposes listed: every purpose).
        and not (r.kind == SubjectRequest.Kind.OBJECTION and r.purposes and purpose not in r.purposes)
    }


def _not_granted_candidates(model_version: ModelVersion, now: datetime) -> list[str]:
    """Pseudonyms of the organisation whose latest event for the use case's purpose is withdrawn or refused."""
    from apps.consent.selectors import subjects_with_status

    return list(
        subjects_with_status(model_version.usecase.organisation, model_version.usecase.purpose, now)
        .exclude(status=None)
        .exclude(status="granted")
        .values_list("pseudonym", flat=True)
    )


def withdrawn_in_training_rows(model_version: ModelVersion, now: datetime | None = None) -> set[str] | None:
    """Training-row people whose consent for the purpose is no longer granted; None when the training version can no
    longer be read (erased, or replaced by an erasure that destroyed it) or has no subject key."""
    import numpy as np

    from apps.datasets.subjects import NOT_LIVE, positions_in_version

    run = model_version.training_run
    version = run.dataset_version
    if not version.subject_key_column or not version.wrapped_key or version.status in NOT_LIVE:
        return None
    candidates = _not_granted_candidates(model_version, now or timezone.now())
    if not candidates:
        return set()
    train = (run.split or {}).get("train")
    train_rows = np.asarray(train, dtype=np.int64) if train is not None else None
    found: set[str] = set()
    for pseudonym, positions in positions_in_version(version, candidates).items():
        if train_rows is None or np.isin(np.asarray(positions, dtype=np.int64), train_rows).any():
            found.add(pseudonym)
    return found


def withdrawn_pseudonyms(model_version: ModelVersion, now: datetime | None = None) -> set[str]:
    """Everyone counted by ``withdrawn_since_training`` (pseudonyms; for tests and the monitoring job, never shown)."""
    withdrawn = withdrawn_in_training_rows(model_version, now) or set()
    return withdrawn | changed_by_requests(model_version)


def withdrawn_since_training(model_version: ModelVersion, now: datetime | None = None) -> int:
    """How many people whose rows trained the model have since withdrawn consent or been erased or rectified."""
    return len(withdrawn_pseudonyms(model_version, now))


def flag_for(model_version: ModelVersion, now: datetime | None = None) -> dict[str, Any] | None:
    """What the pages show: the count, and whether the training rows could still be checked for withdrawals; None
    when nobody is counted."""
    in_rows = withdrawn_in_training_rows(model_version, now)
    by_requests = changed_by_requests(model_version)
    people = len((in_rows or set()) | by_requests)
    if not people:
        return None
    return {
        "people": people,
        "by_requests": len(by_requests),
        "training_rows_readable": in_rows is not None,
    }


# --------------------------------------------------------------------------------------------------- supersession


def _reports_to_supersede(request: SubjectRequest, versions: Iterable[Any]) -> list[tuple[Report, str]]:
    version_ids = [str(v.pk) for v in versions]
    chosen: list[tuple[Report, str]] = []
    datasheets = Report.objects.filter(
        organisation_id=request.organisation_id,
        kind=Report.Kind.DATASHEET,
        subject_type="datasets.datasetversion",
        subject_id__in=version_ids,
    )
    chosen += [(r, "datasheet of a dataset version replaced by this request") for r in datasheets]
    earlier = SubjectRequest.objects.filter(organisation_id=request.organisation_id, pseudonym=request.pseudonym)
    summaries = Report.objects.filter(
        organisation_id=request.organisation_id,
        kind=Report.Kind.SUBJECT_ACCESS,
        subject_type="rights.subjectrequest",
        subject_id__in=[str(pk) for pk in earlier.exclude(pk=request.pk).values_list("pk", flat=True)],
    )
    chosen += [(r, "access summary describing data this request changed") for r in summaries]
    already = set(
        ReportSupersession.objects.filter(request=request, report__in=[r for r, _ in chosen]).values_list(
            "report_id", flat=True
        )
    )
    return [(r, why) for r, why in chosen if r.pk not in already]


def reports_supersede_for(*, actor: Any, request: SubjectRequest, versions: Iterable[Any]) -> int:
    """Mark superseded, by ``request``, the reports that embed data it changed: datasheets of the replaced
    ``versions`` and earlier access summaries of the same person. Each gets a ``ReportSupersession`` row naming the
    request (the verify page shows it); one audit event lists the references."""
    with transaction.atomic():
        chosen = _reports_to_supersede(request, list(versions))
        ReportSupersession.objects.bulk_create(
            [ReportSupersession(report=report, request=request, reason=why) for report, why in chosen]
        )
        audit_record(
            actor=actor,
            organisation=request.organisation,
            action="rights.reports_supersede",
            target=request,
            after={
                "request": request.reference,
                "pseudonym": request.pseudonym,
                "reports": sorted(report.reference for report, _why in chosen),
            },
        )
    return len(chosen)


def supersession_of(report: Report) -> ReportSupersession | None:
    """The newest request that superseded ``report``, if any (the verify page and the report page name it)."""
    return ReportSupersession.objects.select_related("request").filter(report=report).first()
