"""Third-party AI models: a vendor's or a foundation model the organisation uses inside one of its use cases.

Attest neither trains nor runs such a model, so it has no ModelVersion, training run or scoring endpoint. It enters
the same governance path through its use case: the use case's requirements (the organisation is the model's deployer
under the EU AI Act), the use case's ethics reviews (bound to the documentation's sha256) and periodic re-assessment
(``review_due_on``), see docs/architecture.md, "Third-party models".
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class ThirdPartyModel(BaseModel):
    """A model supplied by someone else (a vendor product or a hosted foundation model) used in one use case."""

    class Status(models.TextChoices):
        ACTIVE = "active", "In use"
        SUSPENDED = "suspended", "Suspended"
        RETIRED = "retired", "Retired"

    class Kind(models.TextChoices):
        FOUNDATION = "foundation", "Foundation or general-purpose model"
        VENDOR = "vendor", "Vendor model or product"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="third_party_models")
    supplier = models.CharField(max_length=200)
    name = models.CharField(max_length=200, help_text="The model's or product's name as the supplier gives it.")
    version = models.CharField(max_length=100, help_text="The version, release or snapshot date in use.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.VENDOR)
    intended_use = models.TextField(help_text="What the use case uses it for, and what it must not be used for.")
    licence = models.CharField(max_length=200, blank=True)
    data_location = models.CharField(
        max_length=200, blank=True, help_text="Where the supplier processes and stores the data sent to it."
    )
    contractual_terms = models.TextField(
        blank=True, help_text="Contract, data-processing agreement and the terms that matter (retention, training use)."
    )
    documentation_url = models.URLField(max_length=500, blank=True)
    documentation_name = models.CharField(max_length=255, blank=True)
    documentation_sha256 = models.CharField(max_length=64, blank=True)
    documentation_received_on = models.DateField(null=True, blank=True)
    review_due_on = models.DateField(null=True, blank=True, help_text="When the supplier's model is next re-assessed.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    status_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["supplier", "name", "version"]

    def __str__(self) -> str:
        return f"{self.supplier} {self.name} {self.version}"
