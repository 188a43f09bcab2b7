from __future__ import annotations

from rest_framework import serializers

from apps.jobs.api.serializers import JobStateSerializerMixin
from apps.training.models import BudgetEntry, ModelVersion, PrivacyBudget, TrainingRun


class PrivacyWarningMixin(serializers.Serializer):
    """Marks a privacy record whose noise came from the published seed (the guarantee does not hold)."""

    noise_is_seeded = serializers.BooleanField(read_only=True)
    privacy_warning = serializers.CharField(read_only=True, help_text="Empty unless the guarantee does not hold.")


class TrainingRunSerializer(PrivacyWarningMixin, JobStateSerializerMixin, serializers.ModelSerializer):
    dataset_version = serializers.UUIDField(source="dataset_version_id", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "usecase",
            "dataset_version",
            "status",
            "non_private",
            "spec",
            "planned",
            "steps_completed",
            "privacy",
            "noise_is_seeded",
            "privacy_warning",
            "metrics",
            "job",
            "error",
            "created_at",
        ]


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.UUIDField()
    label = serializers.CharField()
    features = serializers.ListField(child=serializers.CharField(), min_length=1)
    model = serializers.ChoiceField(choices=["logistic_regression", "mlp"])
    target_epsilon = serializers.FloatField(min_value=0.01, max_value=100)
    epochs = serializers.IntegerField(min_value=1, max_value=200, default=3)
    batch_size = serializers.IntegerField(min_value=1, max_value=100000, default=256)
    max_grad_norm = serializers.FloatField(min_value=0.001, max_value=100, default=1.0)
    learning_rate = serializers.FloatField(min_value=1e-6, max_value=10, default=0.05)
    seed = serializers.IntegerField(min_value=0, default=0)
    non_private = serializers.BooleanField(default=False)


class ModelVersionSerializer(PrivacyWarningMixin, serializers.ModelSerializer):
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    training_run = serializers.UUIDField(source="training_run_id", read_only=True)
    parent = serializers.UUIDField(
        source="parent_id", read_only=True, allow_null=True, help_text="The model a mitigated candidate mitigates."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "usecase",
            "training_run",
            "number",
            "sha256",
            "non_private",
            "noise_is_seeded",
            "privacy_warning",
            "manifest",
            "parent",
            "mitigation",
            "created_at",
        ]


class BudgetEntrySerializer(serializers.ModelSerializer):
    run = serializers.UUIDField(source="run_id", read_only=True)

    class Meta:
        model = BudgetEntry
        fields = [
            "run",
            "kind",
            "epsilon",
            "noise_multiplier",
            "sample_rate",
            "steps",
            "composed_after",
            "note",
            "created_at",
        ]


class PrivacyBudgetSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    remaining = serializers.FloatField(read_only=True)
    entries = BudgetEntrySerializer(many=True, read_only=True)

    class Meta:
        model = PrivacyBudget
        fields = [
            "id",
            "dataset",
            "epsilon_cap",
            "delta",
            "people",
            "accountant",
            "composed_spent",
            "naive_spent",
            "reserved",
            "remaining",
            "entries",
        ]
