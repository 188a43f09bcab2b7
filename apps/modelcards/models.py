"""Model cards (Mitchell et al. 2019): the facts come from the model, its run and its evaluation; the narrative
sections people write are versioned here, each revision addressed by its sha256 so reviews can bind to it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class ModelCardRevision(BaseModel):
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="card_revisions")
    number = models.PositiveIntegerField()
    narrative = models.JSONField()
    sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        ordering = ["model_version", "-number"]
        constraints = [models.UniqueConstraint(fields=["model_version", "number"], name="model_card_revision_unique")]

    def __str__(self) -> str:
        return f"model card r{self.number} of {self.model_version}"
