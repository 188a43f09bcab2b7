"""Data-subject request writes. Each service writes exactly one audit event, holding the pseudonym, ids, dates and
counts only: never the external identifier, a row, a corrected value or text the person wrote."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.consent.models import DataSubject
from apps.consent.services import pseudonym_secret
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.jobs.models import Job
from apps.jobs.services import job_create
from apps.rights.models import ModelDecision, RetrainingTask, SubjectRequest
from apps.rights.permissions import can, officer_roles
from apps.rights.selectors import undecided_models
from apps.rights.trace import is_private, runs_in_progress
from apps.training.models import ModelVersion
from workers.engine.consent import pseudonymise

STATUTORY_PERIOD = relativedelta(months=1)  # GDPR Art. 12(3)
EXTENSION_PERIOD = relativedelta(months=2)  # Art. 12(3): once, by two further months, with reasons
IDENTIFIER_MAX_LENGTH = 300
OFFICER_ONLY = "Only the privacy officer (or, where there is none, org admins and data stewards) handles requests."


def _check(actor: User, organisation: Organisation) -> None:
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, "manage", organisation):
        raise PermissionDenied(OFFICER_ONLY)


def _check_assignee(organisation: Organisation, assignee: User | None) -> None:
    if assignee is not None and not roles_in(assignee, organisation) & officer_roles(organisation):
        raise ValidationFailed(
            "The assignee must handle requests in this organisation.", {"assignee": ["not an officer"]}
        )


def _next_reference(organisation: Organisation, year: int) -> str:
    # The organisation row is locked by the caller, so two registrations never take the same number.
    prefix = f"DSR-{year}-"
    taken = SubjectRequest.objects.filter(organisation=organisation, reference__startswith=prefix).values_list(
        "reference", flat=True
    )
    number = max((int(ref.removeprefix(prefix)) for ref in taken), default=0) + 1
    return f"{prefix}{number:04d}"


def _purposes(values: Iterable[str]) -> list[str]:
    cleaned = sorted({str(v).strip() for v in values if str(v).strip()})
    if any(len(p) > 200 for p in cleaned):
        raise ValidationFailed("A purpose is at most 200 characters.", {"purposes": ["too long"]})
    return cleaned


def subject_request_register(
    *,
    actor: User,
    organisation: Organisation,
    kind: str,
    identifier: str,
    identity_verification: str,
    received_on: date | None = None,
    purposes: Iterable[str] = (),
    assignee: User | None = None,
) -> SubjectRequest:
    """Register a request; the identifier becomes the organisation's pseudonym at once and is dropped. Requests for
    the same pseudonym are linked to the first one; the trace job is queued."""
    _check(actor, organisation)
    errors: dict[str, list[str]] = {}
    if kind not in SubjectRequest.Kind.values:
        errors["kind"] = [f"one of {', '.join(SubjectRequest.Kind.values)}"]
    identifier = (identifier or "").strip()
    if not identifier:
        errors["identifier"] = ["The person's identifier is required (it is stored only as a pseudonym)."]
    elif len(identifier) > IDENTIFIER_MAX_LENGTH:
        errors["identifier"] = [f"At most {IDENTIFIER_MAX_LENGTH} characters."]
    verification = (identity_verification or "").strip()
    if not verification:
        errors["identity_verification"] = ["Say how the person's identity was verified."]
    today = timezone.localdate()
    received_on = received_on or today
    if received_on > today:
        errors["received_on"] = ["A request cannot be received in the future."]
    if errors:
        raise ValidationFailed("The request is incomplete.", errors)
    _check_assignee(organisation, assignee)
    chosen_purposes = _purposes(purposes) if kind == SubjectRequest.Kind.OBJECTION else []
    pseudonym = pseudonymise(identifier, pseudonym_secret(organisation))
    del identifier  # never stored, never logged: only the pseudonym leaves this function
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        first = (
            SubjectRequest.objects.filter(organisation=organisation, pseudonym=pseudonym).order_by("created_at").first()
        )
        request = SubjectRequest.objects.create(
            organisation=organisation,
            reference=_next_reference(organisation, received_on.year),
            kind=kind,
            pseudonym=pseudonym,
            subject=DataSubject.objects.filter(organisation=organisation, pseudonym=pseudonym).first(),
            identity_verification=verification,
            purposes=chosen_purposes,
            received_on=received_on,
            due_on=received_on + STATUTORY_PERIOD,
            assignee=assignee,
            duplicate_of=(first.duplicate_of or first) if first else None,
            created_by=actor,
        )
        job = job_create(
            actor=actor,
            organisation=organisation,
            kind="rights_trace",
            spec={"request_id": str(request.pk)},
            target=request,
        )
        request.trace_job = job
        request.save(update_fields=["trace_job", "updated_at"])
        audit_record(
            actor=actor,
            action="rights.register",
            organisation=organisation,
            target=request,
            after={
                "reference": request.reference,
                "kind": kind,
                "pseudonym": pseudonym,
                "subject_known": request.subject_id is not None,
                "purposes": len(chosen_purposes),
                "received_on": received_on.isoformat(),
                "due_on": request.due_on.isoformat(),
                "duplicate_of": str(request.duplicate_of_id) if request.duplicate_of_id else None,
                "assignee": str(assignee.pk) if assignee else None,
                "job": str(job.pk),
            },
        )
    return request


def _open(request: SubjectRequest) -> None:
    if request.status == SubjectRequest.Status.COMPLETED:
        raise InvalidState(f"{request.reference} is completed.")


def subject_request_assign(*, actor: User, request: SubjectRequest, assignee: User | None) -> SubjectRequest:
    _check(actor, request.organisation)
    _open(request)
    _check_assignee(request.organisation, assignee)
    before = str(request.assignee_id) if request.assignee_id else None
    with transaction.atomic():
        request.assignee = assignee
        request.save(update_fields=["assignee", "updated_at"])
        audit_record(
            actor=actor,
            action="rights.assign",
            organisation=request.organisation,
            target=request,
            before={"assignee": before},
            after={"assignee": str(assignee.pk) if assignee else None},
        )
    return request


def subject_request_extend(*, actor: User, request: SubjectRequest, reason: str) -> SubjectRequest:
    """Extend the deadline once, by two months from the statutory one, with a reason (Art. 12(3))."""
    _check(actor, request.organisation)
    _open(request)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            "Give the reason for the extension; the person must be told it.", {"reason": ["required"]}
        )
    with transaction.atomic():
        locked = SubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.extended_at is not None:
            raise InvalidState(f"{request.reference} was already extended once; the law allows one extension.")
        before = locked.due_on
        locked.due_on = locked.received_on + STATUTORY_PERIOD + EXTENSION_PERIOD
        locked.extension_reason = reason
        locked.extended_at = timezone.now()
        locked.save(update_fields=["due_on", "extension_reason", "extended_at", "updated_at"])
        audit_record(
            actor=actor,
            action="rights.extend",
            organisation=request.organisation,
            target=locked,
            before={"due_on": before.isoformat()},
            after={"due_on": locked.due_on.isoformat(), "reason_chars": len(reason)},
        )
    request.refresh_from_db()
    return request


def _traced_model(request: SubjectRequest, model_version: ModelVersion) -> dict[str, Any]:
    for entry in request.trace.get("models", []):
        if entry["model_version_id"] == str(model_version.pk):
            return entry
    raise ValidationFailed(
        "This model was not trained on the person's rows according to the request's trace.",
        {"model_version": ["not in the trace"]},
    )


def subject_request_decide(
    *,
    actor: User,
    request: SubjectRequest,
    model_version: ModelVersion,
    decision: str,
    justification: str = "",
) -> ModelDecision:
    """Record what happens to one model trained on the person's rows. A differentially private model may be kept:
    its (epsilon, delta), copied from the run's privacy record, is the justification. A non-private model must be
    retrained: a retraining task opens on its owner's dashboard."""
    _check(actor, request.organisation)
    _open(request)
    if model_version.organisation_id != request.organisation_id:
        raise NotFound()
    if decision not in ModelDecision.Decision.values:
        raise ValidationFailed(
            "Unknown decision.", {"decision": [f"one of {', '.join(ModelDecision.Decision.values)}"]}
        )
    _traced_model(request, model_version)
    run = model_version.training_run
    if run.created_by_id == actor.pk:
        # Separation of duties: whoever trained the model does not judge whether it may keep a person's data.
        raise PermissionDenied("You launched this model's training; another officer decides about it.")
    private = is_private(model_version)
    epsilon = (run.privacy or {}).get("epsilon") if private else None
    delta = (run.privacy or {}).get("delta") if private else None
    note = (justification or "").strip()
    if decision == ModelDecision.Decision.KEEP_DP:
        if not private:
            raise ValidationFailed(
                "Only a differentially private model may be kept; this one must be retrained.",
                {"decision": ["not private"]},
            )
        guarantee = (
            f"Kept: trained with ({epsilon:g}, {delta:g})-differential privacy, which bounds how much any one "
            "person's rows can change the model."
        )
        note = f"{guarantee} {note}".strip()
    elif not note:
        note = "Retrain without the person's rows."
    with transaction.atomic():
        if ModelDecision.objects.filter(request=request, model_version=model_version).exists():
            raise InvalidState("A decision for this model is already recorded.")
        task = None
        if decision == ModelDecision.Decision.RETRAIN:
            task = RetrainingTask.objects.create(
                organisation=request.organisation,
                request=request,
                model_version=model_version,
                usecase=model_version.usecase,
            )
        decided = ModelDecision.objects.create(
            request=request,
            model_version=model_version,
            decision=decision,
            epsilon=epsilon,
            delta=delta,
            justification=note,
            decided_by=actor,
            retraining_task=task,
        )
        audit_record(
            actor=actor,
            action="rights.decide",
            organisation=request.organisation,
            target=request,
            after={
                "pseudonym": request.pseudonym,
                "model_version": str(model_version.pk),
                "decision": decision,
                "epsilon": epsilon,
                "delta": delta,
                "retraining_task": str(task.pk) if task else None,
            },
        )
    return decided


def _validated_corrections(corrections: Any) -> dict[str, str]:
    if not isinstance(corrections, dict) or not corrections:
        raise ValidationFailed("Give the corrected values, column by column.", {"corrections": ["required"]})
    cleaned = {}
    for column, value in corrections.items():
        column = str(column).strip()
        if not column or len(column) > 200:
            raise ValidationFailed("Each correction names a column.", {"corrections": ["bad column name"]})
        cleaned[column] = "" if value is None else str(value)
    return cleaned


def subject_request_execute(*, actor: User, request: SubjectRequest, corrections: Any = None) -> Job:
    """Carry the request out in a job: access exports, erasure replaces versions, objection withdraws consent,
    rectification writes corrected versions; every kind ends with a certificate. Erasure needs a decision for each
    traced model first. The corrected values travel in the job's spec only (cleared when the job ends)."""
    _check(actor, request.organisation)
    _open(request)
    spec: dict[str, Any] = {"request_id": str(request.pk), "actor_id": str(actor.pk)}
    if request.kind == SubjectRequest.Kind.RECTIFICATION:
        spec["corrections"] = _validated_corrections(corrections)
    elif corrections:
        raise ValidationFailed("Only a rectification takes corrected values.", {"corrections": ["not allowed"]})
    if not request.traced:
        raise InvalidState("The trace has not finished yet; execute once it is shown.")
    if request.kind == SubjectRequest.Kind.ERASURE and undecided_models(request):
        raise ValidationFailed(
            "Record a decision for every model trained on the person's rows before erasing.",
            {"model_version": [m["model_version_id"] for m in undecided_models(request)]},
        )
    with transaction.atomic():
        locked = SubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status in (SubjectRequest.Status.IN_PROGRESS, SubjectRequest.Status.WAITING):
            raise InvalidState(f"{request.reference} is already being carried out.")
        _open(locked)
        job = job_create(
            actor=actor, organisation=request.organisation, kind="rights_execute", spec=spec, target=request
        )
        locked.status = SubjectRequest.Status.IN_PROGRESS
        locked.execute_job = job
        locked.failure = ""
        locked.waiting_reason = ""
        locked.save(update_fields=["status", "execute_job", "failure", "waiting_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="rights.execute",
            organisation=request.organisation,
            target=locked,
            after={
                "pseudonym": request.pseudonym,
                "kind": request.kind,
                "corrected_columns": sorted(spec.get("corrections", {})),
                "job": str(job.pk),
            },
        )
    request.refresh_from_db()
    return job


def subject_request_trace_again(*, actor: User, request: SubjectRequest) -> Job:
    """Queue a fresh trace (data changes between registration and execution)."""
    _check(actor, request.organisation)
    _open(request)
    with transaction.atomic():
        job = job_create(
            actor=actor,
            organisation=request.organisation,
            kind="rights_trace",
            spec={"request_id": str(request.pk)},
            target=request,
        )
        SubjectRequest.objects.filter(pk=request.pk).update(trace_job=job, updated_at=timezone.now())
        audit_record(
            actor=actor,
            action="rights.trace",
            organisation=request.organisation,
            target=request,
            after={"pseudonym": request.pseudonym, "job": str(job.pk)},
        )
    request.refresh_from_db()
    return job


def subject_requests_resume_waiting() -> int:
    """Beat: requeue each waiting request whose blocking training runs have ended (one event per request)."""
    resumed = 0
    for request in SubjectRequest.objects.filter(status=SubjectRequest.Status.WAITING).select_related(
        "execute_job", "organisation"
    ):
        version_ids = [v["version_id"] for v in request.trace.get("versions", [])]
        if runs_in_progress(version_ids):
            continue
        previous = request.execute_job
        spec = dict(previous.spec) if previous is not None else {"request_id": str(request.pk)}
        with transaction.atomic():
            locked = SubjectRequest.objects.select_for_update().get(pk=request.pk)
            if locked.status != SubjectRequest.Status.WAITING:
                continue
            job = job_create(
                actor=None, organisation=request.organisation, kind="rights_execute", spec=spec, target=request
            )
            locked.status = SubjectRequest.Status.IN_PROGRESS
            locked.execute_job = job
            locked.waiting_reason = ""
            locked.save(update_fields=["status", "execute_job", "waiting_reason", "updated_at"])
            audit_record(
                actor=None,
                action="rights.resume",
                organisation=request.organisation,
                target=locked,
                after={"pseudonym": request.pseudonym, "job": str(job.pk)},
            )
        resumed += 1
    return resumed
