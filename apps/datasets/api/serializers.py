from __future__ import annotations

from rest_framework import serializers

from apps.datasets.models import ColumnRole, Dataset, DatasetColumn, DatasetVersion, DatasheetRevision


class DatasetSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "organisation", "usecase", "name", "description", "created_at"]


class DatasetCreateSerializer(serializers.Serializer):
    usecase = serializers.UUIDField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetColumnSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetColumn
        fields = ["name", "position", "kind", "suggested_role", "suggestion_reason", "role", "pii"]


class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)
    columns = DatasetColumnSerializer(many=True, read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "number",
            "kind",
            "status",
            "parent",
            "transform",
            "file_name",
            "file_format",
            "sha256",
            "size_bytes",
            "row_count",
            "column_names",
            "retention_until",
            "subject_key_column",
            "roles_confirmed_at",
            "consent_snapshot_hash",
            "consent_as_of",
            "created_at",
            "columns",
        ]


class VersionUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    retention_until = serializers.DateField(required=False, allow_null=True, default=None)


class RolesSerializer(serializers.Serializer):
    roles = serializers.DictField(child=serializers.ChoiceField(choices=ColumnRole.choices))


class CoverageSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    as_of = serializers.CharField()
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    shares = serializers.DictField(child=serializers.FloatField())


class DatasheetSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasheetRevision
        fields = ["number", "content", "sha256", "created_at"]


class DatasheetWriteSerializer(serializers.Serializer):
    content = serializers.DictField()
