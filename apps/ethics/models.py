"""The ethics board: its rules, review requests bound to exact artifact hashes, votes, recusals, decisions, conditions,
waivers, checklist stances, discussion and in-app notices."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.ethics import rules


class Board(BaseModel):
    """One organisation's ethics board: quorum, approval threshold, when reviews decide, chair and the checklist."""

    class Decides(models.TextChoices):
        WAIT = rules.WAIT, "When every eligible member has voted, or at the due date"
        SETTLED = rules.SETTLED, "As soon as the outcome is settled"

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.CASCADE, related_name="board")
    quorum = models.PositiveSmallIntegerField(default=2, help_text="Minimum number of votes cast (abstentions count).")
    approval_threshold = models.FloatField(
        default=0.66, help_text="Share of approvals among non-abstaining votes needed to approve (0.5 to 1)."
    )
    chair = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    vote_days = models.PositiveSmallIntegerField(default=10, help_text="Days members have to vote.")
    decides = models.CharField(
        max_length=8,
        choices=Decides.choices,
        default=Decides.WAIT,
        help_text="Waiting (the default) puts every member's voice on the record; settling early saves their time.",
    )
    checklist = models.JSONField(default=list, help_text='List of {"key", "text", "source"}.')

    def __str__(self) -> str:
        return f"board of {self.organisation}"

    @property
    def rules(self) -> rules.Rules:
        return rules.Rules(quorum=self.quorum, threshold=self.approval_threshold, decides=self.decides)


class ReviewRequest(BaseModel):
    """A request for the board's decision, bound to the exact artifacts it shows (their hashes)."""

    class Kind(models.TextChoices):
        DEVELOPMENT = "development", "Development approval"
        DEPLOYMENT = "deployment", "Deployment approval"

    class Status(models.TextChoices):
        OPEN = "open", "Open for votes"
        DECIDED = "decided", "Decided"
        SUPERSEDED = "superseded", "Superseded (artifacts changed)"
        WITHDRAWN = "withdrawn", "Withdrawn"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=20)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    usecase = models.ForeignKey("usecases.UseCase", on_delete=models.PROTECT, related_name="reviews")
    model_version = models.ForeignKey(
        "training.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="reviews"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    bindings = models.JSONField(help_text="Each reviewed artifact with its identifier, revision and sha256.")
    bindings_sha256 = models.CharField(max_length=64)
    checklist = models.JSONField(default=list, help_text="The board's checklist as it was when the review opened.")
    answers = models.JSONField(default=dict, blank=True, help_text='{item key: {"answer": yes|no|n/a, "note"}}')
    due_at = models.DateTimeField()
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    superseded_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="review_reference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.get_kind_display().lower()}"


class Recusal(BaseModel):
    """A member's declared conflict of interest: they take no part in this review or its waivers."""

    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="recusals")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "member"], name="recusal_unique")]


class Vote(BaseModel):
    """One member's vote on a review, with a written reason; conditions when approving with conditions."""

    class Choice(models.TextChoices):
        APPROVE = rules.APPROVE, "Approve"
        APPROVE_WITH_CONDITIONS = rules.APPROVE_WITH_CONDITIONS, "Approve with conditions"
        REQUEST_CHANGES = rules.REQUEST_CHANGES, "Request changes"
        REJECT = rules.REJECT, "Reject"
        ABSTAIN = rules.ABSTAIN, "Abstain"

    review = models.ForeignKey(ReviewRequest, on_delete=models.PROTECT, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=24, choices=Choice.choices)
    reason = models.TextField()
    conditions = models.JSONField(default=list, blank=True, help_text='List of {"text", "owner", "due"}.')

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["review", "voter"], name="vote_one_per_member")]


class Decision(BaseModel):
    """The board's decision on a review: immutable (a PostgreSQL trigger refuses UPDATE and DELETE)."""

    class Outcome(models.TextChoices):
        APPROVED = rules.APPROVED, "Approved"
        APPROVED_WITH_CONDITIONS = rules.APPROVED_WITH_CONDITIONS, "Approved with conditions"
        CHANGES_REQUESTED = rules.CHANGES_REQUESTED, "Changes requested"
        REJECTED = rules.REJECTED, "Rejected"

    review = models.OneToOneField(ReviewRequest, on_delete=models.PROTECT, related_name="decision")
    outcome = models.CharField(max_length=32, choices=Outcome.choices)
    tally = models.JSONField()
    quorum = models.PositiveSmallIntegerField()
    approval_threshold = models.FloatField()
    bindings_sha256 = models.CharField(max_length=64)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The chair, when the chair closed the review; empty when the votes settled it.",
    )
    waivers = models.JSONField(default=list, blank=True, help_text="Waivers in force when it was decided.")

    @property
    def approved(self) -> bool:
        return self.outcome in (rules.APPROVED, rules.APPROVED_WITH_CONDITIONS)


class ApprovalRevocation(BaseModel):
    """The board's withdrawal of an approval it gave: its own row beside the immutable Decision (a PostgreSQL
    trigger refuses UPDATE and DELETE here too), so the decision stays as it was taken and the revocation is on the
    record with who, when and why. A revoked approval no longer allows deploying the model."""

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="revocation")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()

    def __str__(self) -> str:
        return f"revocation of the approval of {self.decision.review}"


class Condition(BaseModel):
    """A condition attached to an approval: who must do what by when; tracked until met."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MET = "met", "Met"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="conditions")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField()
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    met_at = models.DateTimeField(null=True, blank=True)
    met_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    met_note = models.TextField(blank=True)

    class Meta:
        ordering = ["due_on"]


class Waiver(BaseModel):
    """A time-boxed exception to failing gates of one deployment review, voted on under the board's rules."""

    class Status(models.TextChoices):
        OPEN = "open", "Open for votes"
        GRANTED = "granted", "Granted"
        REFUSED = "refused", "Refused"
        WITHDRAWN = "withdrawn", "Withdrawn (its review closed first)"

    review = models.ForeignKey(ReviewRequest, on_delete=models.PROTECT, related_name="waivers")
    waived = models.JSONField(help_text="The failing gates and audit faults it covers, with their values.")
    justification = models.TextField()
    expires_on = models.DateField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    decided_at = models.DateTimeField(null=True, blank=True)
    tally = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]


class WaiverVote(BaseModel):
    class Choice(models.TextChoices):
        GRANT = rules.APPROVE, "Grant"
        REFUSE = rules.REJECT, "Refuse"
        ABSTAIN = rules.ABSTAIN, "Abstain"

    waiver = models.ForeignKey(Waiver, on_delete=models.PROTECT, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    reason = models.TextField()

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["waiver", "voter"], name="waiver_vote_one_per_member")]


class ChecklistStance(BaseModel):
    """A reviewer confirming or disputing one of the requester's checklist answers."""

    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="stances")
    item_key = models.CharField(max_length=40)
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stance = models.CharField(max_length=8, choices=[("confirm", "Confirm"), ("dispute", "Dispute")])
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "item_key", "member"], name="stance_unique")]


class Comment(BaseModel):
    """Discussion on one section of a review page."""

    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="comments")
    section = models.CharField(max_length=20)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()

    class Meta:
        ordering = ["created_at"]


class Notice(BaseModel):
    """An in-app notice (also sent by e-mail): a review opened, a vote is due, a decision was made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=24)
    message = models.CharField(max_length=500)
    url = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]
