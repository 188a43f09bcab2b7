"""Requirement frameworks (catalogues shipped as files, or an organisation's own), their versions and requirements,
crosswalks between them, and per use case: evidence linked by hand and confirmations bound to an evidence digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class Framework(BaseModel):
    """A requirement framework: a shipped catalogue (no organisation) or an organisation's own framework or policy."""

    class Kind(models.TextChoices):
        CATALOGUE = "catalogue", "Published framework"
        CUSTOM = "custom", "Organisation's own framework"
        POLICY = "policy", "Internal policy"

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CATALOGUE)
    position = models.PositiveIntegerField(default=100, help_text="Order on pages: shipped catalogues first.")
    current = models.ForeignKey("FrameworkVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(organisation__isnull=True), name="framework_catalogue_key_unique"
            ),
            models.UniqueConstraint(
                fields=["organisation", "key"],
                condition=models.Q(organisation__isnull=False),
                name="framework_org_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FrameworkVersion(BaseModel):
    """One loaded content of a framework, identified by the sha256 of its file; older versions stay readable."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    source = models.JSONField(default=dict, blank=True, help_text="Title, date and URL of the text followed.")
    licence = models.TextField(blank=True)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["framework", "sha256"], name="framework_version_content_unique")]

    def __str__(self) -> str:
        return f"{self.framework.name} {self.version}"


class Requirement(BaseModel):
    """One requirement of one framework version: our short text, when it applies, what evidence satisfies it."""

    framework_version = models.ForeignKey(FrameworkVersion, on_delete=models.CASCADE, related_name="requirements")
    code = models.CharField(max_length=60)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    group = models.CharField(max_length=200, blank=True)
    applies = models.JSONField(default=dict, blank=True)
    evidence_kinds = models.JSONField(default=list)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["framework_version", "code"], name="requirement_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class CrosswalkLink(BaseModel):
    """Two requirements (by framework key and code, so links survive new versions) that the same evidence serves."""

    crosswalk = models.CharField(max_length=120, help_text="The file it came from, e.g. eu-ai-act--iso-42001.")
    from_framework = models.CharField(max_length=60)
    from_code = models.CharField(max_length=60)
    to_framework = models.CharField(max_length=60)
    to_code = models.CharField(max_length=60)
    note = models.CharField(max_length=300, blank=True)
    source = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_framework", "from_code", "to_framework", "to_code"], name="crosswalk_link_unique"
            )
        ]


class FrameworkAssessment(BaseModel):
    """A use case assessed against a framework: the subject of its signed compliance statement."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="framework_assessments")
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="assessments")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["usecase", "framework"], name="assessment_unique")]

    def __str__(self) -> str:
        return f"{self.usecase.reference} {self.usecase.title}: {self.framework.name}"


class EvidenceLink(BaseModel):
    """Evidence a person attached to a requirement of a use case: an uploaded file (its sha256 kept) or a link."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="+")
    framework_key = models.CharField(max_length=60)
    requirement_code = models.CharField(max_length=60)
    label = models.CharField(max_length=200)
    url = models.URLField(max_length=500, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, help_text="Of the uploaded file, or of the link's address.")
    expires_on = models.DateField(null=True, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]


class Confirmation(BaseModel):
    """A person's confirmation that a requirement is met by the evidence as it then was (its digest). When the
    evidence's digest differs, or a piece of it expired, the requirement reopens; the row stays as history."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="+")
    framework_key = models.CharField(max_length=60)
    requirement_code = models.CharField(max_length=60)
    evidence_digest = models.CharField(max_length=64)
    evidence_hashes = models.JSONField(default=list)
    earliest_expiry = models.DateField(null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["usecase", "framework_key", "requirement_code"])]
