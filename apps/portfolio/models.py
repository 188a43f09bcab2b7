"""The organisation's risk register: risks added directly (DPIA risks are read live from each use case's DPIA)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import BaseModel

SCALE = [MinValueValidator(1), MaxValueValidator(5)]


class Risk(BaseModel):
    """A risk the organisation tracks directly, with its rating, owner, treatment and next review."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Treatment(models.TextChoices):
        AVOID = "avoid", "Avoid"
        MITIGATE = "mitigate", "Mitigate"
        TRANSFER = "transfer", "Transfer"
        ACCEPT = "accept", "Accept"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=20, help_text="Human reference, e.g. RK-0003, unique per organisation.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    likelihood = models.PositiveSmallIntegerField(validators=SCALE, help_text="1 (rare) to 5 (almost certain).")
    severity = models.PositiveSmallIntegerField(validators=SCALE, help_text="1 (negligible) to 5 (critical).")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    treatment = models.CharField(max_length=10, choices=Treatment.choices)
    treatment_plan = models.TextField(blank=True)
    review_on = models.DateField(help_text="When the risk is next reviewed.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    usecase = models.ForeignKey(
        "usecases.UseCase", on_delete=models.PROTECT, null=True, blank=True, related_name="direct_risks"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closing_note = models.TextField(blank=True)

    class Meta:
        ordering = ["review_on", "reference"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="risk_reference_unique"),
            models.CheckConstraint(
                condition=models.Q(likelihood__gte=1, likelihood__lte=5), name="risk_likelihood_1_5"
            ),
            models.CheckConstraint(condition=models.Q(severity__gte=1, severity__lte=5), name="risk_severity_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def score(self) -> int:
        return self.likelihood * self.severity
