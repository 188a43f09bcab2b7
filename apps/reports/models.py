"""Signed PDF/A-3 reports with embedded evidence, their versions, and the organisation's signing identity."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.jobs.lifecycle import JobStateMixin


class SigningIdentity(BaseModel):
    """The organisation's signing certificate and (wrapped) private key: self-signed in the demo, imported in
    production. The newest active one signs."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="signing_keys")
    certificate_pem = models.TextField()
    wrapped_key = models.TextField(help_text="The private key (PEM), wrapped by the master key.")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the certificate (DER).")
    subject = models.CharField(max_length=300)
    self_signed = models.BooleanField(default=True)
    not_after = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class Report(JobStateMixin, BaseModel):
    """One version of one report about one subject (a model, a dataset version, a use case, a review or the
    organisation itself). Regenerating makes a new version; the previous one is marked superseded."""

    OUTCOME, OUTCOME_LABEL, RUNNING_LABEL = "ready", "Ready", "Rendering"

    class Kind(models.TextChoices):
        MODEL_CARD = "model_card", "Model card"
        DATASHEET = "datasheet", "Datasheet"
        DPIA = "dpia", "Data protection impact assessment"
        ART30 = "art30", "GDPR Art. 30 record of processing"
        ANNEX_IV = "annex_iv", "EU AI Act Annex IV technical documentation"
        DECISION = "decision", "Ethics decision record"
        AUDIT_EXTRACT = "audit_extract", "Audit-trail extract"
        MONITORING = "monitoring", "Post-market monitoring report"
        SUBJECT_ACCESS = "subject_access", "Data-subject access summary"
        RIGHTS_CERTIFICATE = "rights_certificate", "Data-subject request completion certificate"
        COMPLIANCE = "compliance", "Compliance statement"

    class Status(models.TextChoices):
        """The domain outcome only; whether it is queued, rendering, failed or cancelled is its job's (``state``)."""

        PENDING = "pending", "Not issued yet"
        READY = "ready", "Ready"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="reports")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject_type = models.CharField(max_length=40)
    subject_id = models.CharField(max_length=64)
    subject_label = models.CharField(max_length=300)
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model_version = models.ForeignKey(
        "training.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField()
    reference = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    storage_path = models.CharField(max_length=500, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    signer = models.ForeignKey(SigningIdentity, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    superseded_by = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # A report about a period (the post-market monitoring report of a deployment): its versions and supersession are
    # per subject and period, so March's report never supersedes February's.
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id", "version"],
                condition=models.Q(period_start__isnull=True),
                name="report_version_unique",
            ),
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id", "period_start", "period_end", "version"],
                condition=models.Q(period_start__isnull=False),
                name="report_period_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.get_kind_display()} v{self.version}"

    @property
    def filename(self) -> str:
        return f"{self.reference}.pdf"
