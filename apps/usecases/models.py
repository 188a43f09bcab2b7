"""The use-case register: what an organisation wants to build with AI, why, on which legal basis, at what risk."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.usecases.vocab import AnnexIIIArea, Article9Condition, LawfulBasis, RiskTier


class UseCase(BaseModel):
    """An AI use case with its legal basis, risk tier, DPIA and policies; edits make revisions."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved for development"
        REJECTED = "rejected", "Rejected"
        IN_PRODUCTION = "in_production", "In production"
        RETIRED = "retired", "Retired"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="usecases")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_usecases")
    reference = models.CharField(max_length=20, help_text="Human reference, e.g. UC-0007, unique per organisation.")
    title = models.CharField(max_length=200)
    purpose = models.CharField(max_length=200, help_text="One of the organisation's processing purposes.")
    description = models.TextField(blank=True)
    lawful_basis = models.CharField(max_length=32, choices=LawfulBasis.choices)
    special_category = models.BooleanField(default=False, help_text="Special-category data (GDPR Art. 9) involved.")
    art9_condition = models.CharField(max_length=2, choices=Article9Condition.choices, blank=True)
    data_subject_categories = models.JSONField(default=list, blank=True)
    personal_data_categories = models.JSONField(default=list, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    third_country_transfers = models.JSONField(
        default=list, blank=True, help_text='List of {"country", "safeguard"}; empty when none.'
    )
    retention = models.CharField(max_length=300, help_text="Time limit for erasure, e.g. '24 months after closure'.")
    security_measures = models.TextField(blank=True, help_text="Technical and organisational security measures.")
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    annex_iii_area = models.CharField(max_length=2, choices=AnnexIIIArea.choices, blank=True)
    risk_justification = models.TextField(blank=True)
    affected_groups = models.JSONField(default=list, blank=True)
    automated_decisions = models.BooleanField(
        default=False,
        help_text="Decisions based solely on automated processing with legal or similarly significant effects "
        "(GDPR Art. 22).",
    )
    ai_act_role = models.CharField(
        max_length=16,
        choices=[("provider", "Provider"), ("deployer", "Deployer"), ("both", "Provider and deployer")],
        default="both",
        help_text="The organisation's role under the EU AI Act for this system.",
    )
    dpia = models.JSONField(default=dict, blank=True)
    fairness_policy = models.JSONField(default=dict, blank=True)
    privacy_policy = models.JSONField(default=dict, blank=True)
    monitoring_plan = models.JSONField(
        default=dict, blank=True, help_text="Post-market monitoring: monitors, thresholds, window, minimum rows."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    revision = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="usecase_reference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"


class UseCaseRevision(BaseModel):
    """An immutable snapshot of a use case after an edit, with its hash, so reviews can bind to exact content."""

    usecase = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    sha256 = models.CharField(max_length=64)
    changed_fields = models.JSONField(default=list)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["usecase", "number"], name="usecase_revision_unique")]

    def __str__(self) -> str:
        return f"{self.usecase.reference} r{self.number}"
