"""Data-subject requests on the wire: the identifier goes in once and never comes back; requests carry the pseudonym,
the trace (ids and counts) and the outcome."""

from __future__ import annotations

from rest_framework import serializers

from apps.rights.models import ModelDecision, SubjectRequest
from apps.rights.services import IDENTIFIER_MAX_LENGTH

TRACE_SCHEMA = {"type": "object", "additionalProperties": True}


class ModelDecisionSerializer(serializers.ModelSerializer):
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)
    retraining_task = serializers.UUIDField(source="retraining_task_id", read_only=True, allow_null=True)

    class Meta:
        model = ModelDecision
        fields = [
            "id",
            "model_version",
            "decision",
            "epsilon",
            "delta",
            "justification",
            "decided_by",
            "retraining_task",
            "created_at",
        ]


class SubjectRequestSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    assignee = serializers.UUIDField(source="assignee_id", read_only=True, allow_null=True)
    duplicate_of = serializers.UUIDField(source="duplicate_of_id", read_only=True, allow_null=True)
    trace_job = serializers.UUIDField(source="trace_job_id", read_only=True, allow_null=True)
    execute_job = serializers.UUIDField(source="execute_job_id", read_only=True, allow_null=True)
    certificate = serializers.UUIDField(source="certificate_id", read_only=True, allow_null=True)
    access_report = serializers.UUIDField(source="access_report_id", read_only=True, allow_null=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = SubjectRequest
        fields = [
            "id",
            "organisation",
            "reference",
            "kind",
            "pseudonym",
            "status",
            "received_on",
            "due_on",
            "extended_at",
            "extension_reason",
            "overdue",
            "assignee",
            "duplicate_of",
            "purposes",
            "waiting_reason",
            "failure",
            "trace_job",
            "execute_job",
            "certificate",
            "access_report",
            "completed_at",
            "created_at",
        ]

    def get_overdue(self, item: SubjectRequest) -> bool:
        return item.is_overdue()


class SubjectRequestDetailSerializer(SubjectRequestSerializer):
    trace = serializers.JSONField(read_only=True)
    outcome = serializers.JSONField(read_only=True)
    decisions = ModelDecisionSerializer(many=True, read_only=True)

    class Meta(SubjectRequestSerializer.Meta):
        fields = SubjectRequestSerializer.Meta.fields + ["identity_verification", "trace", "outcome", "decisions"]


class SubjectRequestCreateSerializer(serializers.Serializer):
    organisation = serializers.UUIDField(required=False, help_text="Defaults to your current organisation.")
    kind = serializers.ChoiceField(choices=SubjectRequest.Kind.choices)
    identifier = serializers.CharField(
        max_length=IDENTIFIER_MAX_LENGTH,
        write_only=True,
        help_text="The person's external identifier; turned into the pseudonym at once, never stored or returned.",
    )
    identity_verification = serializers.CharField(max_length=2000)
    received_on = serializers.DateField(required=False)
    purposes = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=50)
    assignee = serializers.UUIDField(required=False, allow_null=True)


class RightsAssignSerializer(serializers.Serializer):
    assignee = serializers.UUIDField(allow_null=True)


class RightsExtendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class RightsDecideSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=ModelDecision.Decision.choices)
    justification = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class RightsExecuteSerializer(serializers.Serializer):
    corrections = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True),
        required=False,
        help_text="Rectification only: column -> corrected value. Used once, never stored on the request.",
    )
