"""Evaluations of model versions: performance and fairness by group, policy gates, and the privacy audit."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.jobs.lifecycle import JobStateMixin


class Evaluation(JobStateMixin, BaseModel):
    """One evaluation of a model version on held-out (or external) rows, with the policy it was judged by."""

    class Status(models.TextChoices):
        """The domain outcome only; whether it is queued, running, failed or cancelled is its job's (``state``)."""

        PENDING = "pending", "No results yet"
        SUCCEEDED = "succeeded", "Finished"

    class Kind(models.TextChoices):
        HELD_OUT = "held_out", "Held-out test rows of its training run"
        EXTERNAL = "external", "External test set"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="evaluations")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HELD_OUT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    seed = models.PositiveIntegerField(default=0)
    policy = models.JSONField(help_text="The fairness policy as it was when the evaluation ran.")
    policy_revision = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=8, blank=True, help_text="pass / fail of the policy gates")
    audit = models.JSONField(default=dict, blank=True, help_text="membership-inference audit")
    privacy_cost = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation of {self.model_version}"
