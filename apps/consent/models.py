"""Data subjects known only by keyed pseudonyms, their consent history per purpose, and consent imports."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.jobs.lifecycle import JobStateMixin


class PseudonymKey(BaseModel):
    """The organisation's secret for subject pseudonyms, wrapped by the master key (never stored in clear)."""

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.CASCADE, related_name="pseudonym_key")
    wrapped_key = models.TextField()

    def __str__(self) -> str:
        return f"pseudonym key of {self.organisation}"


class DataSubject(BaseModel):
    """A person, known only by the HMAC of their external id under the organisation's secret."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="subjects")
    pseudonym = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "pseudonym"], name="subject_unique")]

    def __str__(self) -> str:
        return f"subject {self.pseudonym[:12]}"


class ConsentRecord(BaseModel):
    """One consent event (granted, withdrawn, refused) of a subject for a purpose; history is never rewritten."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        WITHDRAWN = "withdrawn", "Withdrawn"
        REFUSED = "refused", "Refused"

    class Source(models.TextChoices):
        IMPORT = "import", "CSV import"
        API = "api", "API event"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    subject = models.ForeignKey(DataSubject, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices)
    occurred_at = models.DateTimeField()
    notice_version = models.CharField(max_length=300, blank=True)
    channel = models.CharField(max_length=300, blank=True)
    evidence_ref = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    consent_import = models.ForeignKey(
        "ConsentImport", on_delete=models.SET_NULL, null=True, blank=True, related_name="records"
    )
    natural_key = models.CharField(max_length=64, help_text="sha256 of pseudonym, purpose, status and time.")

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "natural_key"], name="consent_event_unique"),
        ]
        indexes = [models.Index(fields=["subject", "purpose", "-occurred_at"], name="consent_latest")]

    def __str__(self) -> str:
        return f"{self.subject} {self.status} {self.purpose} at {self.occurred_at:%Y-%m-%d}"


class ConsentImport(JobStateMixin, BaseModel):
    """One uploaded consent CSV: its hash, counts and per-line error report; all or nothing on fatal errors."""

    OUTCOME_LABEL = "Imported"

    class Status(models.TextChoices):
        """The domain outcome only; whether it is queued, running, failed or cancelled is its job's (``state``)."""

        PENDING = "pending", "Not imported yet"
        SUCCEEDED = "succeeded", "Imported"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    lines = models.PositiveIntegerField(default=0)
    valid = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    created_records = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    error_report = models.TextField(blank=True, help_text="CSV: line, column, message.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"consent import {self.file_name}"
