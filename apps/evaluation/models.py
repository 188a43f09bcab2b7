"""Evaluations of model versions: performance and fairness by group, policy gates, and the privacy audit."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class Evaluation(BaseModel):
    """One evaluation of a model version on held-out (or external) rows, with the policy it was judged by."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        HELD_OUT = "held_out", "Held-out test rows of its training run"
        EXTERNAL = "external", "External test set"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="evaluations")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HELD_OUT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    seed = models.PositiveIntegerField(default=0)
    policy = models.JSONField(help_text="The fairness policy as it was when the evaluation ran.")
    policy_revision = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=8, blank=True, help_text="pass / fail of the policy gates")
    audit = models.JSONField(default=dict, blank=True, help_text="membership-inference audit")
    privacy_cost = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation of {self.model_version} ({self.status})"
