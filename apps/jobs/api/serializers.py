from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.jobs.models import Job
from apps.jobs.registry import shown_result


class JobSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    created_by = serializers.CharField(
        source="created_by.username",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="Who asked for it; null for system jobs (beat, retention) and after the user was deleted.",
    )
    result = serializers.SerializerMethodField(
        help_text="null while running, and for kinds whose result holds personal data (read those where they belong)."
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "organisation",
            "kind",
            "queue",
            "status",
            "created_by",
            "target_type",
            "target_id",
            "attempt",
            "max_attempts",
            "progress",
            "progress_message",
            "progress_data",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "result",
            "error",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "nullable": True})
    def get_result(self, job: Job) -> Any:
        return shown_result(job)


class JobWithResultSerializer(JobSerializer):
    """A job with its whole result, for the one endpoint allowed to read a private result (a deployment's scoring
    poll, authenticated by that deployment's token)."""

    @extend_schema_field({"type": "object", "nullable": True})
    def get_result(self, job: Job) -> Any:
        return job.result


class DiagnosticsRequestSerializer(serializers.Serializer):
    organisation = serializers.UUIDField(required=False, help_text="Defaults to your current organisation.")
    sleep_seconds = serializers.FloatField(required=False, min_value=0, max_value=60, default=0)


class JobStateSerializerMixin(serializers.Serializer):
    """``status`` and ``error`` of a domain row that reads them from its job (``state`` and ``failure``)."""

    status = serializers.CharField(
        source="state", read_only=True, help_text="The domain outcome once there is one; otherwise its job's status."
    )
    error = serializers.CharField(
        source="failure", read_only=True, help_text="Why it ended without an outcome, in plain words; empty otherwise."
    )
