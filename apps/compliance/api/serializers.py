from __future__ import annotations

from rest_framework import serializers


class ProgressSerializer(serializers.Serializer):
    framework = serializers.CharField()
    name = serializers.CharField()
    met = serializers.IntegerField()
    partly = serializers.IntegerField()
    not_met = serializers.IntegerField()
    not_applicable = serializers.IntegerField()
    total = serializers.IntegerField()
    applicable = serializers.IntegerField()
    percent = serializers.IntegerField()


class FrameworkSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    version = serializers.CharField(source="current.version")
    sha256 = serializers.CharField(source="current.sha256")
    source = serializers.JSONField(source="current.source")
    own = serializers.SerializerMethodField()

    def get_own(self, framework) -> bool:  # type: ignore[no-untyped-def]
        return framework.organisation_id is not None


class EvidenceItemSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    sha256 = serializers.CharField()
    url = serializers.CharField()
    expires_on = serializers.DateField(allow_null=True)
    source = serializers.CharField()


class RequirementStatusSerializer(serializers.Serializer):
    framework = serializers.CharField(source="framework_key")
    id = serializers.CharField(source="code")
    title = serializers.CharField(source="requirement.title")
    group = serializers.CharField(source="requirement.group")
    status = serializers.CharField()
    reason = serializers.CharField()
    reopened = serializers.BooleanField()
    via = serializers.CharField()
    evidence = EvidenceItemSerializer(many=True)
    evidence_digest = serializers.CharField()
    confirmed_by = serializers.SerializerMethodField()
    confirmed_at = serializers.SerializerMethodField()

    def get_confirmed_by(self, status) -> str | None:  # type: ignore[no-untyped-def]
        return status.confirmation.confirmed_by.display_name if status.confirmation else None

    def get_confirmed_at(self, status) -> str | None:  # type: ignore[no-untyped-def]
        return status.confirmation.created_at.isoformat() if status.confirmation else None


class RequirementRefSerializer(serializers.Serializer):
    framework = serializers.SlugField()
    requirement = serializers.CharField(max_length=60)


class EvidenceLinkSerializer(RequirementRefSerializer):
    label = serializers.CharField(max_length=200)
    url = serializers.URLField(required=False, allow_blank=True)
    file = serializers.FileField(required=False)
    expires_on = serializers.DateField(required=False, allow_null=True)


class StatementSerializer(serializers.Serializer):
    framework = serializers.SlugField()


class FrameworkUploadSerializer(serializers.Serializer):
    organisation = serializers.UUIDField()
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=["custom", "policy"], default="custom")
    key = serializers.CharField(required=False, allow_blank=True, help_text="For a CSV: the framework's id.")
    name = serializers.CharField(required=False, allow_blank=True, help_text="For a CSV: its name.")
    version = serializers.CharField(required=False, allow_blank=True, help_text="For a CSV: its version.")
