"""Data-subject requests (GDPR Arts. 15-21): the request, known only by the person's pseudonym, its trace through
datasets, models and reports, the privacy officer's per-model decisions and the retraining tasks they open."""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import BaseModel


class SubjectRequest(BaseModel):
    """One request of a person, registered with their pseudonym only (the external identifier is never stored)."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access (Art. 15)"
        ERASURE = "erasure", "Erasure (Art. 17)"
        OBJECTION = "objection", "Objection / consent withdrawal (Art. 21, Art. 7(3))"
        RECTIFICATION = "rectification", "Rectification (Art. 16)"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting for a training run"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    pseudonym = models.CharField(
        max_length=64, db_index=True, help_text="HMAC of the identifier; never the identifier."
    )
    subject = models.ForeignKey(
        "consent.DataSubject", on_delete=models.SET_NULL, null=True, blank=True, related_name="rights_requests"
    )
    identity_verification = models.TextField(max_length=2000, help_text="How the person's identity was verified.")
    purposes = models.JSONField(default=list, blank=True, help_text="Objection: the purposes; empty means all.")
    received_on = models.DateField()
    due_on = models.DateField()
    extension_reason = models.TextField(max_length=2000, blank=True)
    extended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    waiting_reason = models.CharField(max_length=500, blank=True)
    failure = models.CharField(max_length=1000, blank=True, help_text="Why the last execution failed.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="duplicates"
    )
    trace = models.JSONField(default=dict, blank=True, help_text="Pseudonym, ids and counts only.")
    trace_job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    execute_job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    outcome = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    certificate = models.ForeignKey("reports.Report", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    access_report = models.ForeignKey(
        "reports.Report", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["due_on", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="subject_request_reference_unique")
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.get_kind_display()})"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.COMPLETED

    def is_overdue(self, today: date | None = None) -> bool:
        return self.is_open and self.due_on < (today or timezone.localdate())

    def days_left(self, today: date | None = None) -> int:
        return (self.due_on - (today or timezone.localdate())).days

    @property
    def traced(self) -> bool:
        return bool(self.trace.get("traced_at"))

    @property
    def found(self) -> bool:
        return bool(self.trace.get("found"))


class RetrainingTask(BaseModel):
    """A retraining task opened on the model owner's dashboard because a non-private model used erased data."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(SubjectRequest, on_delete=models.PROTECT, related_name="retraining_tasks")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    closed_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"retraining of model {self.model_version_id} for {self.request.reference}"


class ModelDecision(BaseModel):
    """The privacy officer's decision about one model trained on the person's rows."""

    class Decision(models.TextChoices):
        KEEP_DP = "keep_dp", "Keep under its differential-privacy guarantee"
        RETRAIN = "retrain", "Retrain without the person's data"

    request = models.ForeignKey(SubjectRequest, on_delete=models.PROTECT, related_name="decisions")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    epsilon = models.FloatField(null=True, blank=True, help_text="Copied from the run's privacy record.")
    delta = models.FloatField(null=True, blank=True, help_text="Copied from the run's privacy record.")
    justification = models.TextField(max_length=2000)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    retraining_task = models.ForeignKey(
        RetrainingTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "model_version"], name="model_decision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} for model {self.model_version_id}"


# ------------------------------------------------------------------------------ engineer C: exports, supersessions


class ExportPackage(BaseModel):
    """The access export of one request: a ZIP (JSON and CSV) encrypted at rest under its own data key, downloadable
    by the privacy officer until it expires; then its key and file are destroyed (the sha256 stays)."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(SubjectRequest, on_delete=models.PROTECT, related_name="exports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    storage_path = models.CharField(max_length=500)
    wrapped_key = models.TextField(blank=True, help_text="The file's data key, wrapped by the master key.")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the ZIP (the plaintext the person receives).")
    size_bytes = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0, help_text="Rows exported, across every version.")
    versions = models.PositiveIntegerField(default=0, help_text="Dataset versions the rows came from.")
    expires_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.sha256[:12]} of {self.request.reference}"

    @property
    def filename(self) -> str:
        return f"{self.request.reference}-access-export.zip"

    def is_available(self, now: datetime | None = None) -> bool:
        return bool(self.wrapped_key) and self.erased_at is None and self.expires_at > (now or timezone.now())


class ReportSupersession(BaseModel):
    """A report marked superseded because a request changed the data it embeds (a datasheet of a version replaced
    by erasure, an earlier access summary): which request, and why."""

    report = models.ForeignKey("reports.Report", on_delete=models.PROTECT, related_name="rights_supersessions")
    request = models.ForeignKey(SubjectRequest, on_delete=models.PROTECT, related_name="supersessions")
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["report", "request"], name="report_supersession_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} superseded by {self.request.reference}"
