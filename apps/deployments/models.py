"""Deployments of approved model versions and their post-market monitoring (EU AI Act Art. 72).

A deployment puts one model version in one environment of a use case. Production data reaches it as batches (scored
by its endpoint, or posted and uploaded afterwards); each batch is folded at once into the sketch of its monitoring
window, so only aggregates are kept unless the use case's monitoring plan allows raw rows (encrypted, with a
retention date). Windows are evaluated against the reference fixed at training time, and failing monitors open
alerts (one open alert per monitor). People affected by a decision contest it on a public page; owners open
retraining requests that go back through training, evaluation and the board.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import BaseModel
from apps.jobs.lifecycle import JobStateMixin


class Deployment(BaseModel):
    """One model version serving in one environment (pilot, production, ...) of a use case."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REPLACED = "replaced", "Replaced by a promotion"
        ROLLED_BACK = "rolled_back", "Rolled back"
        WITHDRAWN = "withdrawn", "Withdrawn"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.PROTECT, related_name="deployments")
    environment = models.SlugField(max_length=40, help_text="pilot, production, or the organisation's own name.")
    system = models.CharField(max_length=200, help_text="The system it runs in, e.g. 'Benefits case-management'.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    deployed_on = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    review = models.ForeignKey(
        "ethics.ReviewRequest",
        on_delete=models.PROTECT,
        related_name="deployments",
        help_text="The approval relied on.",
    )
    waivers = models.JSONField(default=list, blank=True, help_text="ids of the waivers in force when deployed")
    plan = models.JSONField(default=dict, help_text="The use case's monitoring plan as it was when deployed.")
    plan_sha256 = models.CharField(max_length=64, blank=True)
    previous = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="The one it replaced."
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)
    public_slug = models.SlugField(
        max_length=40, unique=True, help_text="Random slug of the public contestation and feedback page."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["usecase", "environment"],
                condition=Q(status="active"),
                name="deployment_one_active_per_environment",
            )
        ]

    def __str__(self) -> str:
        return f"{self.usecase.reference} {self.environment}: model v{self.model_version.number}"


class MonitoringReference(BaseModel):
    """The training-time reference of a model version (bins, quantile grid, proportions): aggregates only."""

    model_version = models.OneToOneField(
        "training.ModelVersion", on_delete=models.PROTECT, related_name="monitoring_reference"
    )
    reference = models.JSONField()
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"reference of {self.model_version}"


class ScoringToken(BaseModel):
    """A bearer token for one deployment's scoring endpoint; only its sha256 is kept, the secret is shown once."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class MonitoringWindow(JobStateMixin, BaseModel):
    """One window (a day or a week, as the plan says) of one deployment: its mergeable sketch and its results."""

    class Status(models.TextChoices):
        OPEN = "open", "Collecting"
        EVALUATED = "evaluated", "Evaluated"

    OUTCOME = "evaluated"
    OUTCOME_LABEL = "Evaluated"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    rows = models.PositiveIntegerField(default=0)
    labelled_rows = models.PositiveIntegerField(default=0)
    sketch = models.JSONField(default=dict, blank=True, help_text="WindowSketch.to_dict(): counts, never rows")
    results = models.JSONField(default=list, blank=True, help_text="evaluate_window() results, one per monitor")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["deployment", "starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "starts_at"], name="monitoring_window_unique_start")
        ]

    def __str__(self) -> str:
        return f"{self.deployment} window {self.starts_at:%Y-%m-%d}"


class ProductionBatch(JobStateMixin, BaseModel):
    """A batch of production rows (scored, posted or uploaded) or of late labels; the rows themselves are kept only
    when the plan allows, encrypted, until ``retain_until``."""

    class Source(models.TextChoices):
        SCORING = "scoring", "Scored by the deployment's endpoint"
        POSTED = "posted", "Posted through the API"
        UPLOADED = "uploaded", "Uploaded in the portal"
        LABELS = "labels", "Late ground truth"

    class Status(models.TextChoices):
        PENDING = "pending", "Not processed yet"
        ACCEPTED = "accepted", "Accepted"

    OUTCOME = "accepted"
    OUTCOME_LABEL = "Accepted"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="batches")
    source = models.CharField(max_length=12, choices=Source.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    received_at = models.DateTimeField()
    window = models.ForeignKey(MonitoringWindow, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    sha256 = models.CharField(max_length=64, help_text="of the batch as received")
    rows = models.PositiveIntegerField(default=0)
    labels_matched = models.PositiveIntegerField(default=0)
    labels_unknown = models.PositiveIntegerField(default=0, help_text="late labels whose prediction id is unknown")
    storage_path = models.CharField(max_length=500, blank=True, help_text="encrypted raw rows, when kept")
    wrapped_key = models.BinaryField(null=True, blank=True)
    retain_until = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.get_source_display()} batch of {self.rows} rows"


class PendingOutcome(models.Model):
    """A prediction waiting for its ground truth: keyed by an HMAC of the prediction id (never the id itself), with
    only what the window's confusion counts need. Deleted when its label arrives or its window's retention ends."""

    id = models.BigAutoField(primary_key=True)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    window = models.ForeignKey(MonitoringWindow, on_delete=models.CASCADE, related_name="+")
    prediction_digest = models.CharField(max_length=64)
    predicted = models.PositiveSmallIntegerField()
    groups = models.JSONField(default=dict, blank=True, help_text="sensitive attribute -> value, for fairness counts")
    expires_on = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deployment", "prediction_digest"], name="pending_outcome_unique")
        ]

    def __str__(self) -> str:
        return f"prediction awaiting its label ({self.prediction_digest[:8]})"


class Alert(BaseModel):
    """A monitor that failed, or a governance event (approval revoked, waiver expiring); one open per monitor."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Severity(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alerts")
    monitor = models.CharField(max_length=200, help_text="e.g. data_drift:psi:age, governance:waiver_expiring")
    family = models.CharField(max_length=40)
    severity = models.CharField(max_length=12, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    title = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True, help_text="the monitor result: value, threshold, interval")
    window = models.ForeignKey(MonitoringWindow, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    occurrences = models.PositiveIntegerField(default=1, help_text="windows in which it failed while open")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=500, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "monitor"],
                condition=~Q(status="resolved"),
                name="alert_one_unresolved_per_monitor",
            )
        ]

    def __str__(self) -> str:
        return self.title


class AlertComment(BaseModel):
    """A note on an alert by someone working on it."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(max_length=4000)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"comment on {self.alert}"


class AlertWebhook(BaseModel):
    """An organisation's optional webhook for alerts; each delivery is signed with HMAC-SHA256 of the body."""

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    wrapped_secret = models.BinaryField()
    active = models.BooleanField(default=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_delivery_status = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"alert webhook of {self.organisation}"


class Feedback(BaseModel):
    """Feedback on a deployment, or a contested decision, from a signed-in user or an affected person."""

    class Source(models.TextChoices):
        INTERNAL = "internal", "Signed-in user"
        PUBLIC = "public", "Affected person (public page)"

    class Kind(models.TextChoices):
        CONTESTATION = "contestation", "Contests a decision"
        FEEDBACK = "feedback", "Feedback"

    class Category(models.TextChoices):
        UNTRIAGED = "untriaged", "Not triaged yet"
        WRONG_DECISION = "wrong_decision", "Decision believed wrong"
        UNFAIR = "unfair", "Unfair treatment"
        EXPLANATION = "explanation", "Explanation unclear"
        DATA_ERROR = "data_error", "Data about me is wrong"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        NEW = "new", "New"
        TRIAGED = "triaged", "Triaged"
        CLOSED = "closed", "Closed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="feedback")
    source = models.CharField(max_length=12, choices=Source.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    body = models.TextField(max_length=4000)
    decision_reference = models.CharField(max_length=100, blank=True, help_text="as the person typed it")
    contact = models.CharField(max_length=200, blank=True, help_text="only if the person chose to leave one")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.UNTRIAGED)
    severity = models.CharField(max_length=12, choices=Alert.Severity.choices, default=Alert.Severity.INFO)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, db_index=True)
    alert = models.ForeignKey(Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback")
    triaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    triaged_at = models.DateTimeField(null=True, blank=True)
    response = models.TextField(max_length=4000, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.deployment}"


class RetrainingRequest(BaseModel):
    """The owner's request to retrain a deployed model, from an alert or feedback, through the governed path."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        TRAINING = "training", "Training"
        IN_REVIEW = "in_review", "In board review"
        APPROVED = "approved", "Approved: may be promoted"
        PROMOTED = "promoted", "Promoted"
        CLOSED = "closed", "Closed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="retraining_requests")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(max_length=4000)
    alert = models.ForeignKey(Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    feedback = models.ForeignKey(Feedback, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    training_run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    review = models.ForeignKey(
        "ethics.ReviewRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"retraining of {self.deployment}"
