from __future__ import annotations

from rest_framework import serializers

from apps.ethics import rules
from apps.ethics.models import Board, Comment, Condition, Decision, Notice, ReviewRequest, Vote, Waiver
from apps.modelcards.models import ModelCardRevision


class VoteSerializer(serializers.ModelSerializer):
    voter = serializers.CharField(source="voter.username", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "voter", "choice", "reason", "conditions", "created_at"]


class DecisionSerializer(serializers.ModelSerializer):
    closed_by = serializers.CharField(source="closed_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Decision
        fields = [
            "id",
            "outcome",
            "tally",
            "quorum",
            "approval_threshold",
            "bindings_sha256",
            "closed_by",
            "waivers",
            "created_at",
        ]


class WaiverSerializer(serializers.ModelSerializer):
    review = serializers.UUIDField(source="review_id", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)

    class Meta:
        model = Waiver
        fields = [
            "id",
            "review",
            "waived",
            "justification",
            "expires_on",
            "requested_by",
            "status",
            "decided_at",
            "tally",
            "created_at",
        ]


class ReviewSerializer(serializers.ModelSerializer):
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    model_version = serializers.UUIDField(source="model_version_id", read_only=True, allow_null=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    superseded_by = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    class Meta:
        model = ReviewRequest
        fields = [
            "id",
            "reference",
            "kind",
            "status",
            "usecase",
            "model_version",
            "requested_by",
            "bindings",
            "bindings_sha256",
            "checklist",
            "answers",
            "due_at",
            "superseded_reason",
            "superseded_by",
            "decision",
            "created_at",
        ]

    def get_superseded_by(self, review: ReviewRequest) -> str | None:
        successor = getattr(review, "superseded_by", None) if review.status == "superseded" else None
        return str(successor.id) if successor else None

    def get_decision(self, review: ReviewRequest) -> dict | None:
        decision = getattr(review, "decision", None) if review.status == "decided" else None
        return DecisionSerializer(decision).data if decision else None


class ReviewStateSerializer(serializers.Serializer):
    """Where the votes stand: what the review page shows under 'votes so far'."""

    quorum = serializers.IntegerField()
    approval_threshold = serializers.FloatField()
    counts = serializers.DictField(child=serializers.IntegerField())
    cast = serializers.IntegerField()
    votes_needed = serializers.IntegerField()
    quorum_reachable = serializers.BooleanField()
    eligible = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())
    recused = serializers.ListField(child=serializers.CharField())
    blocking = serializers.ListField(child=serializers.DictField())


class ReviewDetailSerializer(ReviewSerializer):
    votes = VoteSerializer(many=True, read_only=True)
    waivers = WaiverSerializer(many=True, read_only=True)
    state = serializers.SerializerMethodField()

    class Meta(ReviewSerializer.Meta):
        fields = ReviewSerializer.Meta.fields + ["votes", "waivers", "state"]

    def get_state(self, review: ReviewRequest) -> dict:
        from apps.ethics.selectors import review_state

        state = review_state(review)
        return ReviewStateSerializer(
            {
                "quorum": state.rules.quorum,
                "approval_threshold": state.rules.threshold,
                "counts": state.tally.counts,
                "cast": state.tally.cast,
                "votes_needed": state.votes_needed,
                "quorum_reachable": state.quorum_reachable,
                "eligible": [m.username for m in state.eligible],
                "pending": [m.username for m in state.pending],
                "recused": [m.username for m in state.members if m.id in state.recused],
                "blocking": state.blocking,
            }
        ).data


class DeploymentRequestSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    answers = serializers.DictField(required=False, default=dict)


class VoteRequestSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=rules.VOTE_CHOICES)
    reason = serializers.CharField(max_length=5000)
    conditions = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text='For approve_with_conditions: [{"text", "owner": user id, "due"}]',
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class AnswersSerializer(serializers.Serializer):
    answers = serializers.DictField(help_text='{item key: {"answer": "yes"|"no"|"n/a", "note": "..."}}')


class StanceSerializer(serializers.Serializer):
    item_key = serializers.CharField(max_length=40)
    stance = serializers.ChoiceField(choices=["confirm", "dispute"])
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "section", "author", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class WaiverRequestSerializer(serializers.Serializer):
    justification = serializers.CharField(max_length=5000)
    expires_on = serializers.DateField()


class WaiverVoteSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=rules.WAIVER_CHOICES)
    reason = serializers.CharField(max_length=5000)


class ConditionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    review = serializers.UUIDField(source="decision.review_id", read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Condition
        fields = ["id", "review", "text", "owner", "due_on", "status", "overdue", "met_at", "met_note"]

    def get_overdue(self, condition: Condition) -> bool:
        from django.utils import timezone

        return condition.status == Condition.Status.OPEN and condition.due_on < timezone.localdate()


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000)


class BoardSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    chair = serializers.UUIDField(source="chair_id", allow_null=True, required=False)
    members = serializers.SerializerMethodField()

    class Meta:
        model = Board
        fields = [
            "organisation",
            "quorum",
            "approval_threshold",
            "chair",
            "vote_days",
            "decides",
            "checklist",
            "members",
        ]

    def get_members(self, board: Board) -> list[str]:
        from apps.ethics.selectors import board_members

        return [m.username for m in board_members(board.organisation)]


class NoticeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notice
        fields = ["id", "organisation", "review", "kind", "message", "url", "read_at", "created_at"]


class ModelCardSerializer(serializers.ModelSerializer):
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ModelCardRevision
        fields = ["id", "model_version", "number", "narrative", "sha256", "author", "created_at"]


class ModelCardWriteSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    narrative = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=5000))
