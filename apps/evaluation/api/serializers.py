from __future__ import annotations

from rest_framework import serializers

from apps.evaluation.models import Evaluation
from apps.jobs.api.serializers import JobStateSerializerMixin


class EvaluationSerializer(JobStateSerializerMixin, serializers.ModelSerializer):
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    dataset_version = serializers.UUIDField(source="dataset_version_id", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "model_version",
            "dataset_version",
            "kind",
            "status",
            "seed",
            "policy",
            "policy_revision",
            "verdict",
            "results",
            "audit",
            "privacy_cost",
            "job",
            "error",
            "created_at",
        ]


class EvaluationRequestSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    dataset_version = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An external test set; default: the run's held-out rows.",
    )
    seed = serializers.IntegerField(min_value=0, default=0)
