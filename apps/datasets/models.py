"""Datasets and their immutable, content-addressed, encrypted versions, with columns, profiles and datasheets."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.jobs.lifecycle import failure_of, is_live, state_of


class ColumnRole(models.TextChoices):
    DIRECT_IDENTIFIER = "direct_identifier", "Direct identifier"
    SUBJECT_KEY = "subject_key", "Subject key"
    QUASI_IDENTIFIER = "quasi_identifier", "Quasi-identifier"
    SENSITIVE = "sensitive", "Sensitive attribute"
    LABEL = "label", "Label"
    FEATURE = "feature", "Feature"
    IGNORE = "ignore", "Ignore"


class Dataset(BaseModel):
    """A body of data collected for a use case; all its versions share one privacy budget."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="datasets")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(BaseModel):
    """One immutable file of a dataset, addressed by the sha256 of its content, stored encrypted."""

    class Kind(models.TextChoices):
        RAW = "raw", "Raw upload"
        PREPARED = "prepared", "Prepared (consent-filtered, de-identified)"
        ANONYMISED = "anonymised", "Anonymised"

    class Status(models.TextChoices):
        """PROFILING until the profile is stored (whether that job is queued, running or failed is the job's)."""

        PROFILING = "profiling", "Profiling"
        READY = "ready", "Ready"
        ERASED = "erased", "Erased (retention expired)"
        # A data-subject request (erasure, rectification) made a new version without / with corrected rows; this
        # one's file and key are destroyed, its hashes remain (``replaced_by``).
        REPLACED = "replaced", "Replaced (data-subject request)"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROFILING)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    transform = models.JSONField(default=dict, blank=True, help_text="How this version was made from its parent.")
    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=16)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    row_count = models.PositiveBigIntegerField()
    column_names = models.JSONField(default=list)
    formula_cells = models.JSONField(default=dict, blank=True)
    storage_path = models.CharField(max_length=500, help_text="Relative to STORAGE_ROOT.")
    wrapped_key = models.TextField(blank=True, help_text="The file's data key, wrapped by the master key.")
    retention_until = models.DateField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    profile = models.JSONField(null=True, blank=True)
    profile_job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    roles_confirmed_at = models.DateTimeField(null=True, blank=True)
    roles_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject_key_column = models.CharField(max_length=200, blank=True)
    consent_snapshot_hash = models.CharField(max_length=64, blank=True)
    consent_as_of = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The encrypted index of subject pseudonyms -> row positions (apps/datasets/subjects.py), stored beside the file
    # under the same data key: destroying the key destroys the index too.
    subject_index_sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of the index plaintext.")
    subject_index_column = models.CharField(max_length=200, blank=True, help_text="The column it was built from.")
    subject_index_rows = models.PositiveBigIntegerField(null=True, blank=True, help_text="Rows with a subject.")
    replaced_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Status replaced."
    )

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="dataset_version_content_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number} ({self.kind})"

    @property
    def label(self) -> str:
        return f"v{self.number} {self.get_kind_display().split(' (')[0].lower()}"

    @property
    def profile_state(self) -> str:
        """ready / erased, or the profiling job's queued / running / failed / cancelled."""
        outcome = self.status if self.status != self.Status.PROFILING else None
        return state_of(self.profile_job, outcome)

    @property
    def profile_failure(self) -> str:
        return failure_of(self.profile_job, self.status if self.status != self.Status.PROFILING else None)


class DatasetColumn(BaseModel):
    """A column of a version: its profile, personal-data findings, suggested and confirmed role."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, blank=True)
    suggested_role = models.CharField(max_length=20, choices=ColumnRole.choices, blank=True)
    suggestion_reason = models.CharField(max_length=300, blank=True)
    role = models.CharField(max_length=20, choices=ColumnRole.choices, blank=True)
    pii = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["version", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="dataset_column_unique")]

    def __str__(self) -> str:
        return self.name


class DatasheetRevision(BaseModel):
    """A revision of a version's datasheet (Gebru et al., seven sections); the newest is current."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="datasheets")
    number = models.PositiveIntegerField()
    content = models.JSONField()
    sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        ordering = ["version", "-number"]
        constraints = [models.UniqueConstraint(fields=["version", "number"], name="datasheet_revision_unique")]

    def __str__(self) -> str:
        return f"datasheet r{self.number} of {self.version}"


class Anonymisation(BaseModel):
    """A steward's anonymisation of a version: the chosen quasi-identifiers, hierarchies and privacy models, the
    optimal generalisation found, risk and utility before and after, and (once applied) the version it produced."""

    class Status(models.TextChoices):
        """The domain outcome only: no result yet, a result ready to apply, or applied. Searching, applying and
        failing are its job's (``state``)."""

        PENDING = "pending", "No result yet"
        READY = "ready", "Ready to apply"
        APPLIED = "applied", "Applied"

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="anonymisations")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    config = models.JSONField(help_text="quasi-identifiers, hierarchies, sensitive attribute, k, l, t, suppression")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    job = models.ForeignKey(
        "jobs.Job",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The latest job: the search, then the apply once it is requested.",
    )
    result = models.JSONField(default=dict, blank=True)
    output = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"anonymisation of {self.version} ({self.status})"

    STATE_LABELS = {
        "queued": "Queued",
        "searching": "Searching",
        "failed": "Search failed",
        "cancelled": "Search cancelled",
        "ready": "Ready to apply",
        "applying": "Applying",
        "apply_failed": "Ready to apply (the last apply failed)",
        "applied": "Applied",
    }

    @property
    def state(self) -> str:
        """What people see, from the domain outcome and the latest job (search or apply)."""
        job = self.job
        if self.status == self.Status.APPLIED:
            return "applied"
        if self.status == self.Status.READY:
            if job is not None and job.kind == "anonymise_apply":
                if is_live(job.status):
                    return "applying"
                if job.status in ("failed", "cancelled"):
                    return "apply_failed"
            return "ready"
        job_state = state_of(job, None)
        return "searching" if job_state == "running" else job_state

    @property
    def state_label(self) -> str:
        return self.STATE_LABELS.get(self.state, self.state)

    @property
    def is_live(self) -> bool:
        return self.state in ("queued", "searching", "applying")

    @property
    def failure(self) -> str:
        return failure_of(self.job, None) if self.state in ("failed", "cancelled", "apply_failed") else ""
