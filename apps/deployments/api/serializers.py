from __future__ import annotations

from rest_framework import serializers

from apps.deployments.models import Deployment, MonitoringWindow, ProductionBatch, ScoringToken
from apps.jobs.api.serializers import JobStateSerializerMixin


class DeploymentSerializer(serializers.ModelSerializer):
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    review = serializers.UUIDField(source="review_id", read_only=True)
    previous = serializers.UUIDField(source="previous_id", read_only=True, allow_null=True)
    waivers = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    plan = serializers.DictField(read_only=True, help_text="The use case's monitoring plan as it was when deployed.")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "usecase",
            "model_version",
            "environment",
            "system",
            "owner",
            "deployed_on",
            "status",
            "review",
            "waivers",
            "plan",
            "plan_sha256",
            "previous",
            "ended_at",
            "end_reason",
            "public_slug",
            "created_at",
        ]
        read_only_fields = fields


class DeploymentCreateSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    environment = serializers.CharField(max_length=40, help_text="pilot, production, or the organisation's own name.")
    system = serializers.CharField(max_length=200)
    owner = serializers.CharField(required=False, help_text="Username of the deployment's owner; default: you.")
    deployed_on = serializers.DateField(required=False, help_text="Default: today.")


class EndReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class ScoringTokenSerializer(serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = ScoringToken
        fields = ["id", "deployment", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ScoringTokenCreateSerializer(serializers.Serializer):
    deployment = serializers.UUIDField()
    name = serializers.CharField(max_length=100)


class ScoringTokenSecretSerializer(ScoringTokenSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once: only its sha256 is kept.")

    class Meta(ScoringTokenSerializer.Meta):
        fields = [*ScoringTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ProductionBatchSerializer(JobStateSerializerMixin, serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    window = serializers.UUIDField(source="window_id", read_only=True, allow_null=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    raw_rows_kept = serializers.SerializerMethodField(help_text="Whether the rows are kept (encrypted) until then.")

    class Meta:
        model = ProductionBatch
        fields = [
            "id",
            "deployment",
            "source",
            "status",
            "error",
            "received_at",
            "window",
            "sha256",
            "rows",
            "labels_matched",
            "labels_unknown",
            "raw_rows_kept",
            "retain_until",
            "job",
        ]
        read_only_fields = fields

    def get_raw_rows_kept(self, batch: ProductionBatch) -> bool:
        return bool(batch.storage_path) and batch.status == ProductionBatch.Status.ACCEPTED


class BatchRowsSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        help_text="One object per row: the model's features, prediction, prediction_id, and optionally the "
        "sensitive attributes and label. Or send the same columns as a CSV body (text/csv) or a multipart 'file'.",
    )


class LabelSerializer(serializers.Serializer):
    prediction_id = serializers.CharField(max_length=200)
    label = serializers.CharField(max_length=200)


class LabelsSerializer(serializers.Serializer):
    labels = LabelSerializer(many=True, allow_empty=False)


class MonitoringWindowSerializer(serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    error = serializers.CharField(
        source="failure", read_only=True, help_text="Why its last evaluation failed, in plain words; empty otherwise."
    )
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = MonitoringWindow
        fields = [
            "id",
            "deployment",
            "starts_at",
            "ends_at",
            "status",
            "error",
            "rows",
            "labelled_rows",
            "evaluated_at",
            "job",
        ]
        read_only_fields = fields


class MonitorResultSerializer(serializers.Serializer):
    monitor = serializers.CharField()
    family = serializers.CharField()
    subject = serializers.CharField(allow_null=True, required=False)
    status = serializers.CharField(help_text="pass, warn, fail, or insufficient (too few rows: never pass or fail).")
    severity = serializers.CharField(help_text="info, warning or critical.")
    value = serializers.FloatField(allow_null=True, required=False)
    threshold = serializers.FloatField(allow_null=True, required=False)
    interval = serializers.ListField(child=serializers.FloatField(allow_null=True), allow_null=True, required=False)
    rows = serializers.IntegerField(allow_null=True, required=False)
    message = serializers.CharField()
    details = serializers.DictField(required=False, help_text="The rest: baseline, statistic, dates, ...")


class MonitoringWindowDetailSerializer(MonitoringWindowSerializer):
    results = MonitorResultSerializer(many=True, read_only=True)

    class Meta(MonitoringWindowSerializer.Meta):
        fields = [*MonitoringWindowSerializer.Meta.fields, "results"]
        read_only_fields = fields


class ScoreRequestSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        help_text="One object per row with the model's features; optionally prediction_id (generated when absent) "
        "and the sensitive attributes. Or send the same columns as a CSV body (text/csv) or a multipart 'file'.",
    )


class ScoreAcceptedSerializer(serializers.Serializer):
    batch = serializers.UUIDField()
    job = serializers.UUIDField()
    status = serializers.CharField()
    poll = serializers.CharField(help_text="GET it with the same token until status is succeeded or failed.")
