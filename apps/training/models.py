"""Private training runs, the per-dataset privacy-budget ledger, and the model versions they produce."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.jobs.lifecycle import JobStateMixin

SEEDED_NOISE_WARNING = (
    "Trained with noise and sampling drawn from the published seed: anyone with the seed can replay them, so the "
    "stated (epsilon, delta) does not hold. Retrain before relying on it; it cannot be approved for deployment."
)


def noise_is_seeded(privacy: dict | None, *, non_private: bool = False) -> bool:
    """True for a private privacy record (one stating an epsilon) that names no CSPRNG noise source: before noise came
    from a CSPRNG it came from the run's seed, which the manifest stores and the pages show, so the guarantee does
    not hold. Read from the stored record: no migration."""
    privacy = privacy or {}
    if non_private or privacy.get("private") is False or privacy.get("epsilon") is None:
        return False
    return not str(privacy.get("noise_source") or "").startswith("csprng")


class PrivacyBudget(BaseModel):
    """The privacy budget of one dataset (shared by all its versions), capped by the use case's policy."""

    dataset = models.OneToOneField("datasets.Dataset", on_delete=models.PROTECT, related_name="privacy_budget")
    epsilon_cap = models.FloatField()
    delta = models.FloatField(help_text="The delta every run on this dataset is accounted at.")
    people = models.PositiveIntegerField(help_text="n: distinct data subjects, for the delta rule.")
    composed_spent = models.FloatField(default=0.0, help_text="Epsilon of all committed runs composed (accountant).")
    naive_spent = models.FloatField(default=0.0, help_text="Sum of committed runs' epsilons, shown beside it.")
    accountant = models.CharField(max_length=8, default="pld")
    reserved = models.FloatField(default=0.0, help_text="Planned epsilon of runs launched but not finished.")

    def __str__(self) -> str:
        return f"budget of {self.dataset}"

    @property
    def remaining(self) -> float:
        return max(0.0, self.epsilon_cap - self.composed_spent - self.reserved)


class BudgetEntry(BaseModel):
    """One ledger line: a reservation at launch, then a commit of what was spent or a release."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserved"
        COMMIT = "commit", "Committed"
        RELEASE = "release", "Released"

    budget = models.ForeignKey(PrivacyBudget, on_delete=models.PROTECT, related_name="entries")
    run = models.ForeignKey("TrainingRun", on_delete=models.PROTECT, related_name="budget_entries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    epsilon = models.FloatField()
    noise_multiplier = models.FloatField(null=True, blank=True)
    sample_rate = models.FloatField(null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)
    composed_after = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.epsilon:.3f}"


class TrainingRun(JobStateMixin, BaseModel):
    """A DP-SGD (or non-private baseline) training run on a prepared dataset version."""

    OUTCOME_LABEL = "Succeeded"

    class Status(models.TextChoices):
        """The domain outcome only; whether it is queued, running, failed or cancelled is its job's (``state``)."""

        PENDING = "pending", "No outcome yet"
        SUCCEEDED = "succeeded", "Succeeded"
        STOPPED = "stopped", "Stopped; budget settled"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="training_runs")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="training_runs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    non_private = models.BooleanField(default=False, help_text="A baseline for comparison only; never deployable.")
    spec = models.JSONField(
        help_text="label, features, model, epochs, batch size, clipping, learning rate, seed, target epsilon, delta"
    )
    planned = models.JSONField(default=dict, help_text="noise multiplier, sample rate and steps planned at launch")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    steps_completed = models.PositiveIntegerField(default=0)
    privacy = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    curve = models.JSONField(default=list, blank=True)
    split = models.JSONField(default=dict, blank=True, help_text="row indices of train/validation/test, and hash")
    error = models.TextField(blank=True, help_text="How the run ended without a model (steps done, budget settled).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {str(self.id)[:8]} on {self.dataset_version}"

    @property
    def noise_is_seeded(self) -> bool:
        """Its privacy record says the noise came from the published seed (see ``noise_is_seeded``)."""
        return noise_is_seeded(self.privacy, non_private=self.non_private)

    @property
    def privacy_warning(self) -> str:
        return SEEDED_NOISE_WARNING if self.noise_is_seeded else ""

    @property
    def failure(self) -> str:
        """Why it ended without a model: the settled note (steps, job message) once the failure hook ran."""
        if self.status == self.Status.STOPPED and self.error:
            return self.error
        return super().failure


class ModelVersion(BaseModel):
    """The trained model: weights (safetensors), preprocessing spec and manifest, addressed by sha256."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="model_versions")
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    storage_path = models.CharField(max_length=500)
    manifest = models.JSONField()
    non_private = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="candidates",
        help_text="For a mitigated candidate: the model version it mitigates.",
    )
    mitigation = models.JSONField(
        default=dict,
        blank=True,
        help_text="For a mitigated candidate: method, constraint, fitted thresholds or member weights, and the rows "
        "they were fitted on. Empty for a trained model.",
    )

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["usecase", "number"], name="model_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.usecase.reference} model v{self.number}"

    @property
    def noise_is_seeded(self) -> bool:
        """Its noise came from the published seed: the privacy guarantee does not hold (see ``noise_is_seeded``)."""
        return noise_is_seeded((self.manifest or {}).get("privacy"), non_private=self.non_private)

    @property
    def privacy_warning(self) -> str:
        return SEEDED_NOISE_WARNING if self.noise_is_seeded else ""
