"""The append-only, hash-chained audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One change: who did what to which object, with before/after data, chained by hash to the previous event of the
    same chain. Each organisation has its own chain; events without an organisation (platform events) have theirs."""

    sequence = models.PositiveBigIntegerField(help_text="Position in its organisation's chain, from 1, without gaps.")
    created_at = models.DateTimeField(db_index=True)
    # No database-level foreign keys: deleting an organisation or user must never need to touch audit rows.
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="Username at the time, or 'system'.")
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=100, db_index=True, help_text="<entity>.<verb>, e.g. usecase.submit")
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        # Within a chain the id grows with the sequence (appends are serialised by the chain's head lock).
        ordering = ["-id"]
        indexes = [models.Index(fields=["organisation", "-sequence"], name="audit_org_seq")]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "sequence"],
                condition=models.Q(organisation__isnull=False),
                name="audit_event_chain_sequence",
            ),
            models.UniqueConstraint(
                fields=["sequence"], condition=models.Q(organisation__isnull=True), name="audit_event_platform_sequence"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """One row per chain (an organisation's, or the platform's for events without one) holding its last sequence and
    hash; locked while appending to that chain, so it never forks and writers of other chains never wait for it."""

    chain = models.CharField(max_length=40, unique=True, help_text="The organisation's id, or 'platform'.")
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.sequence} of {self.chain}"


class PublishedHead(models.Model):
    """A chain head that left the database: handed out by the head API, or embedded in a signed audit extract. The
    chain must still hold it: verification fails if the event at that sequence has another hash, or the chain is
    shorter (an emptied chain included). Insert-only: the portal's database role may only SELECT and INSERT here, and
    a trigger refuses UPDATE and DELETE."""

    chain = models.CharField(max_length=40, help_text="The organisation's id, or 'platform'.")
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    sequence = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    published_at = models.DateTimeField()
    source = models.CharField(max_length=40, help_text="Where it went: 'api' (the head endpoint) or 'report'.")

    class Meta:
        constraints = [
            # The first publication of a position is the one kept: a rewritten chain cannot publish over it.
            models.UniqueConstraint(fields=["chain", "sequence"], name="audit_published_head_once"),
        ]

    def __str__(self) -> str:
        return f"published head #{self.sequence} of {self.chain}"
