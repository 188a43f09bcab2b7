from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiTypes, extend_schema_field
from rest_framework import serializers

from apps.datasets.models import Anonymisation, ColumnRole, Dataset, DatasetColumn, DatasetVersion, DatasheetRevision
from apps.datasets.profiles import column_profiles


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
    profile_status = serializers.CharField(
        source="profile_state", read_only=True, help_text="ready, or the profiling job's status."
    )
    profile_error = serializers.CharField(source="profile_failure", read_only=True)
    columns = DatasetColumnSerializer(many=True, read_only=True)
    profile = serializers.SerializerMethodField(
        help_text="Each column's profile by name, redacted: no values of personal-data columns, and a "
        "quasi-identifier's values and bins only when the organisation's minimum cell size of rows share them."
    )

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "number",
            "kind",
            "status",
            "profile_status",
            "profile_error",
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
            "profile",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_profile(self, version: DatasetVersion) -> dict[str, Any]:
        return column_profiles(version, version.columns.all()) if version.profile else {}


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


class AnonymisationSerializer(serializers.ModelSerializer):
    version = serializers.UUIDField(source="version_id", read_only=True)
    output = serializers.UUIDField(source="output_id", read_only=True, allow_null=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    status = serializers.CharField(source="state", read_only=True)
    error = serializers.CharField(source="failure", read_only=True)

    class Meta:
        model = Anonymisation
        fields = ["id", "version", "status", "config", "result", "error", "job", "output", "created_at"]


class AnonymisationRequestSerializer(serializers.Serializer):
    quasi_identifiers = serializers.ListField(child=serializers.CharField(max_length=200), min_length=1)
    sensitive = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    k = serializers.IntegerField(min_value=2, max_value=1000, default=5)
    suppression_limit = serializers.FloatField(min_value=0, max_value=0.5, default=0.05)
    l_diversity = serializers.IntegerField(min_value=2, required=False, allow_null=True, default=None)
    l_kind = serializers.ChoiceField(choices=["distinct", "entropy"], default="distinct")
    t_closeness = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True, default=None)
    t_distance = serializers.ChoiceField(choices=["equal", "hierarchical"], default="equal")
    measure = serializers.ChoiceField(choices=["loss", "entropy"], default="loss")
    hierarchies = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        default=dict,
        help_text='Per column: {"kind": "intervals", "widths": [5, 10]} | {"kind": "table", "rows": [[value, ...]]} '
        "| dates | prefix | suppression | propose",
    )
