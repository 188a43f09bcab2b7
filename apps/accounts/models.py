"""Users, organisations, memberships with roles, invitations, auditor grants, API tokens and attempt counters."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

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
    PRIVACY = "privacy", "Privacy officer"


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

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"

    # Tokens made before scopes existed could write: they keep that (the migration's default), new ones choose.
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Required for new tokens; older ones may lack it."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"


class UserSession(BaseModel):
    """A signed-in browser session as its owner sees it: known by the sha256 of Django's session key, never the key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tracked_sessions")
    key_hash = models.CharField(max_length=64, unique=True)
    device = models.CharField(max_length=80, blank=True, help_text="Browser and system, e.g. 'Firefox on Linux'.")
    network = models.CharField(
        max_length=48, blank=True, help_text="The client address truncated to its network (IPv4 /24, IPv6 /48)."
    )
    signed_in_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.user} on {self.device or 'an unknown device'}"


class AttemptCounter(models.Model):
    """Attempts on one throttling key (an account, an address and account, or an address) within a fixed window.

    Counted before the password is checked, under a row lock, so parallel guesses cannot all pass a stale count.
    """

    key = models.CharField(max_length=64, unique=True, help_text="HMAC of scope and values: no username or address.")
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_at = models.DateTimeField(null=True, blank=True, help_text="When the limit was reached (one event).")

    def __str__(self) -> str:
        return f"{self.count} attempts since {self.window_started_at:%Y-%m-%d %H:%M}"


class Invitation(BaseModel):
    """An offer of a role (or of auditor access) in an organisation, sent by e-mail; nothing changes for the person
    until they accept it while signed in. Only the sha256 of its single-use token is stored."""

    class Kind(models.TextChoices):
        MEMBERSHIP = "membership", "Membership"
        AUDITOR_GRANT = "auditor_grant", "External auditor access"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MEMBERSHIP)
    role = models.CharField(max_length=16, choices=Role.choices)
    email = models.EmailField(help_text="Where the invitation was sent; shown to the organisation's admins only.")
    email_sha256 = models.CharField(max_length=64, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text="Auditor access: why it is given.")
    access_expires_at = models.DateTimeField(null=True, blank=True, help_text="Auditor access: when it ends.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation to {self.organisation} as {self.get_role_display()} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING and self.expires_at > timezone.now()
