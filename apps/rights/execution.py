"""Carrying a data-subject request out, inside its ``rights_execute`` job.

The job re-traces first (data may have changed since registration). A training run still using a version that holds
the person makes the request wait (status "waiting", a clear message) and the beat resumes it when the run ends.
Erasure is all-or-nothing: the replacement versions, the consent withdrawals, the supersession of reports and the
completion commit together or not at all; the old versions' keys and files are destroyed only after that commit.
Any failure leaves the request open with the reason (the job's failure hook records it).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.consent.models import ConsentRecord, DataSubject
from apps.core.errors import ValidationFailed
from apps.jobs.lifecycle import failure_of
from apps.jobs.models import Job
from apps.reports.models import Report
from apps.rights.models import ModelDecision, SubjectRequest
from apps.rights.selectors import undecided_models
from apps.rights.trace import runs_in_progress, trace_compute
from workers.engine.consent import ConsentEvent

WITHDRAWN_CHANNEL = "data-subject request"


def _actor(spec: dict[str, Any], request: SubjectRequest) -> User:
    actor = User.objects.filter(pk=spec.get("actor_id")).first()
    return actor or request.created_by


def trace_run(request_id: Any) -> dict[str, Any]:
    """The ``rights_trace`` job: compute and keep the trace (ids and counts only)."""
    request = SubjectRequest.objects.select_related("organisation", "subject").get(pk=request_id)
    trace = trace_compute(request)
    subject = (
        request.subject
        or DataSubject.objects.filter(organisation=request.organisation, pseudonym=request.pseudonym).first()
    )
    SubjectRequest.objects.filter(pk=request.pk).update(trace=trace, subject=subject, updated_at=timezone.now())
    return {"versions": len(trace["versions"]), "models": len(trace["models"]), "found": trace["found"]}


def _withdraw_consent(request: SubjectRequest, purposes: list[str] | None) -> list[str]:
    """Record the person's consent withdrawn for ``purposes`` (None: every purpose they have a record for)."""
    subject = request.subject
    if subject is None:
        return []
    known = sorted(set(ConsentRecord.objects.filter(subject=subject).values_list("purpose", flat=True)))
    chosen = known if not purposes else sorted(set(purposes))
    now = timezone.now()
    records = []
    for purpose in chosen:
        event = ConsentEvent(
            subject_pseudonym=subject.pseudonym,
            purpose=purpose,
            status=ConsentRecord.Status.WITHDRAWN,
            occurred_at=now,
            notice_version="",
            channel=WITHDRAWN_CHANNEL,
            evidence_ref=request.reference,
        )
        records.append(
            ConsentRecord(
                organisation=request.organisation,
                subject=subject,
                purpose=purpose,
                status=event.status,
                occurred_at=now,
                channel=WITHDRAWN_CHANNEL,
                evidence_ref=request.reference,
                source=ConsentRecord.Source.API,
                natural_key=event.natural_key,
            )
        )
    ConsentRecord.objects.bulk_create(records, ignore_conflicts=True)
    return chosen


def _wait(request: SubjectRequest, trace: dict[str, Any], runs: list[Any]) -> dict[str, Any]:
    names = sorted({f"{run.dataset_version.dataset.name} v{run.dataset_version.number}" for run in runs})
    reason = (
        f"Waiting for {len(runs)} training run{'s' if len(runs) != 1 else ''} on {', '.join(names)} to end: the "
        "person's rows are in use. The request resumes by itself when the run ends."
    )
    SubjectRequest.objects.filter(pk=request.pk).update(
        status=SubjectRequest.Status.WAITING, waiting_reason=reason, trace=trace, updated_at=timezone.now()
    )
    return {"waiting": True, "runs": len(runs)}


def _decisions_outcome(request: SubjectRequest) -> list[dict[str, Any]]:
    return [
        {
            "model_version_id": str(d.model_version_id),
            "decision": d.decision,
            "epsilon": d.epsilon,
            "delta": d.delta,
            "justification": d.justification,
        }
        for d in request.decisions.all()
    ]


def _remains(request: SubjectRequest, trace: dict[str, Any]) -> list[str]:
    remains = []
    for decision in request.decisions.select_related("model_version"):
        if decision.decision == ModelDecision.Decision.KEEP_DP:
            remains.append(
                f"Model version {decision.model_version.number} is kept: trained with "
                f"({decision.epsilon:g}, {decision.delta:g})-differential privacy."
            )
        else:
            remains.append(
                f"Model version {decision.model_version.number} was trained on the person's rows; its retraining "
                "without them is open on the owner's dashboard."
            )
    if trace.get("consent"):
        remains.append("The consent history is kept as the record of the withdrawal (pseudonym only).")
    return remains


def _erase(
    request: SubjectRequest, actor: User, trace: dict[str, Any], created: list[Any]
) -> tuple[dict[str, Any], list[Any]]:
    from apps.datasets.subjects import versions_without_subjects
    from apps.rights.flags import reports_supersede_for

    missing = undecided_models(request)
    if missing:
        raise ValidationFailed(
            f"{len(missing)} model(s) trained on the person's rows have no decision yet; record them and execute again."
        )
    replacements = versions_without_subjects(
        actor=actor,
        organisation=request.organisation,
        pseudonyms=[request.pseudonym],
        reason={"request": request.reference, "request_id": str(request.pk), "kind": request.kind},
    )
    created.extend(r.new for r in replacements)
    withdrawn = _withdraw_consent(request, None)
    superseded = reports_supersede_for(actor=actor, request=request, versions=[r.old for r in replacements])
    return {
        "versions": [
            {
                "old_version_id": str(r.old.pk),
                "new_version_id": str(r.new.pk),
                "dataset": r.old.dataset.name,
                "old_number": r.old.number,
                "new_number": r.new.number,
                "old_sha256": r.old_sha256,
                "new_sha256": r.new_sha256,
                "rows_removed": r.rows_removed,
            }
            for r in replacements
        ],
        "consent_withdrawn": withdrawn,
        "models": _decisions_outcome(request),
        "reports_superseded": superseded,
    }, replacements


def _rectify(
    request: SubjectRequest, actor: User, trace: dict[str, Any], corrections: dict[str, str], created: list[Any]
) -> dict:
    from apps.datasets.models import DatasetVersion
    from apps.datasets.subjects import version_rectified

    rectified = []
    for entry in trace["versions"]:
        version = DatasetVersion.objects.select_related("dataset").get(pk=entry["version_id"])
        columns = {c: v for c, v in corrections.items() if c in (version.column_names or [])}
        if not columns:
            continue
        new_version = version_rectified(
            actor=actor,
            version=version,
            pseudonym=request.pseudonym,
            corrections=columns,
            reason={"request": request.reference, "request_id": str(request.pk)},
        )
        created.append(new_version)
        rectified.append(
            {
                "old_version_id": str(version.pk),
                "new_version_id": str(new_version.pk),
                "dataset": version.dataset.name,
                "old_number": version.number,
                "new_number": new_version.number,
                "old_sha256": version.sha256,
                "new_sha256": new_version.sha256,
                "columns": sorted(columns),
            }
        )
    if trace["versions"] and not rectified:
        raise ValidationFailed("None of the corrected columns exists in a version holding the person's rows.")
    return {"versions": rectified, "models": []}


def execute_run(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``rights_execute`` job."""
    request = SubjectRequest.objects.select_related("organisation", "subject").get(pk=spec["request_id"])
    actor = _actor(spec, request)
    trace = trace_compute(request)
    if request.subject is None and trace["subject_known"]:
        request.subject = DataSubject.objects.get(organisation=request.organisation, pseudonym=request.pseudonym)
    version_ids = [v["version_id"] for v in trace["versions"]]
    if request.kind in (SubjectRequest.Kind.ERASURE, SubjectRequest.Kind.RECTIFICATION):
        blocking = runs_in_progress(version_ids)
        if blocking:
            return _wait(request, trace, blocking)
    request.trace = trace
    replacements: list[Any] = []
    outcome: dict[str, Any] = {
        "kind": request.kind,
        "found": trace["found"],
        "versions": [],
        "models": [],
        "consent_withdrawn": [],
        "reports_superseded": 0,
        "export_sha256": None,
    }
    # New versions whose rows this transaction creates: if it rolls back, their files must not stay behind.
    created: list[Any] = []
    try:
        with transaction.atomic():
            if not trace["found"]:
                pass  # an unknown person: "no data held", with its own certificate
            elif request.kind == SubjectRequest.Kind.ERASURE:
                done, replacements = _erase(request, actor, trace, created)
                outcome.update(done)
            elif request.kind == SubjectRequest.Kind.OBJECTION:
                outcome["consent_withdrawn"] = _withdraw_consent(request, request.purposes or None)
            elif request.kind == SubjectRequest.Kind.RECTIFICATION:
                outcome.update(_rectify(request, actor, trace, spec.get("corrections") or {}, created))
            elif request.kind == SubjectRequest.Kind.ACCESS:
                from apps.rights.exports import access_export_create

                package = access_export_create(actor=actor, request=request)
                outcome["export_sha256"] = package.sha256
                outcome["export_id"] = str(package.pk)
            outcome["remains"] = _remains(request, trace)
            outcome["completed_at"] = timezone.now().isoformat()
            _complete(request, actor, outcome)
    except BaseException:
        from apps.datasets.subjects import version_files_discard

        version_files_discard(created)
        raise
    if replacements:
        from apps.datasets.subjects import versions_destroy

        # Only after the replacements committed: destroying first could lose data if the commit failed.
        versions_destroy(replacements)
    return {"completed": True, "versions": len(outcome["versions"]), "found": outcome["found"]}


def _complete(request: SubjectRequest, actor: User, outcome: dict[str, Any]) -> None:
    """Mark completed and queue the documents; the one ``rights.complete`` event (the certificate's and summary's
    ``report.issue`` events follow it as named cascades)."""
    from apps.reports.services import report_request

    request.outcome = outcome
    request.status = SubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.failure = ""
    request.waiting_reason = ""
    request.save()
    if request.kind == SubjectRequest.Kind.ACCESS and outcome["found"]:
        request.access_report = report_request(actor=actor, kind=Report.Kind.SUBJECT_ACCESS, subject=request)
    request.certificate = report_request(actor=actor, kind=Report.Kind.RIGHTS_CERTIFICATE, subject=request)
    request.save(update_fields=["access_report", "certificate", "updated_at"])
    audit_record(
        actor=actor,
        action="rights.complete",
        organisation=request.organisation,
        target=request,
        after={
            "pseudonym": request.pseudonym,
            "kind": request.kind,
            "found": outcome["found"],
            "versions": len(outcome["versions"]),
            "rows_removed": sum(v.get("rows_removed", 0) for v in outcome["versions"]),
            "new_sha256": [v["new_sha256"] for v in outcome["versions"]],
            "consent_withdrawn": len(outcome["consent_withdrawn"]),
            "models": len(outcome["models"]),
            "reports_superseded": outcome["reports_superseded"],
            "export_sha256": outcome["export_sha256"],
            "certificate": str(request.certificate_id),
        },
    )


def execute_failed(job: Job) -> None:
    """Failure hook: the request stays open with the reason in plain words; corrected values leave the job row."""
    request = SubjectRequest.objects.filter(execute_job=job).first()
    if request is not None and request.status != SubjectRequest.Status.COMPLETED:
        message = failure_of(job, None) or "The execution failed."
        SubjectRequest.objects.filter(pk=request.pk).update(
            status=SubjectRequest.Status.OPEN, failure=message[:1000], updated_at=timezone.now()
        )
    _forget_corrections(job)


def _forget_corrections(job: Job) -> None:
    if "corrections" in (job.spec or {}):
        spec = {k: v for k, v in job.spec.items() if k != "corrections"}
        Job.objects.filter(pk=job.pk).update(spec=spec)


def execute_succeeded(job: Job, result: dict[str, Any]) -> None:
    if result.get("completed"):
        _forget_corrections(job)
