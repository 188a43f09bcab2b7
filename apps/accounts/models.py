"""Users, organisations, memberships with roles, auditor grants, API tokens and login attempts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import BaseModel


class User(AbstractUser):
    """A person who signs in; what they may do comes from their memberships and auditor grants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)

    REQUIRED_FIELDS = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def display_name(self) -> str:
        return self.full_name or self.username


class Organisation(BaseModel):
    """A controller (public body or company) whose AI systems are governed in Attest."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code")
    address = models.TextField(blank=True)
    controller_contact = models.CharField(max_length=200, blank=True)
    dpo_name = models.CharField("data protection officer", max_length=200, blank=True)
    dpo_email = models.EmailField("DPO e-mail", blank=True)
    processing_purposes = models.JSONField(
        default=list, blank=True, help_text="The organisation's list of processing purposes (strings)."
    )
    min_cell_size = models.PositiveIntegerField(
        "minimum cell size",
        default=10,
        validators=[MinValueValidator(2), MaxValueValidator(1000)],
        help_text="Profiles show a quasi-identifier's value or bin only when at least this many rows share it.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Org admin"
    OWNER = "owner", "Use-case owner"
    STEWARD = "steward", "Data steward"
    BOARD = "board", "Ethics board member"
    AUDITOR = "auditor", "Auditor"


class Membership(BaseModel):
    """One role a user holds in one organisation; a user with several roles has several rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation", "role"], name="membership_unique_role"),
        ]
        ordering = ["organisation__name", "role"]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} of {self.organisation}"


class AuditorGrant(BaseModel):
    """Read-only access to an organisation for an external auditor or regulator who is not a member of it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auditor_grants")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="auditor_grants")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} audits {self.organisation}"


class ApiToken(BaseModel):
    """A bearer token for API clients; only its sha256 is stored, the secret is shown once at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True, help_text="First characters, to recognise a token.")
    key_hash = models.CharField(max_length=64, unique=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class LoginFailure(models.Model):
    """A failed sign-in, kept briefly to throttle guessing per username and per client address."""

    username = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"failed sign-in for {self.username} at {self.created_at:%Y-%m-%d %H:%M}"
