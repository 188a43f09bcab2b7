"""Input and output shapes of the third-party model API (shape only; the services validate the domain)."""

from __future__ import annotations

from rest_framework import serializers

from apps.thirdparty.models import ThirdPartyModel


class ThirdPartyModelSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = ThirdPartyModel
        fields = [
            "id",
            "organisation",
            "usecase",
            "supplier",
            "name",
            "version",
            "kind",
            "intended_use",
            "licence",
            "data_location",
            "contractual_terms",
            "documentation_url",
            "documentation_name",
            "documentation_sha256",
            "documentation_received_on",
            "review_due_on",
            "status",
            "status_reason",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ThirdPartyModelWriteSerializer(serializers.Serializer):
    usecase = serializers.UUIDField(required=True, help_text="Only when recording; a model stays in its use case.")
    supplier = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ThirdPartyModel.Kind.choices, required=False)
    intended_use = serializers.CharField(max_length=5000)
    licence = serializers.CharField(max_length=200, required=False, allow_blank=True)
    data_location = serializers.CharField(max_length=200, required=False, allow_blank=True)
    contractual_terms = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    review_due_on = serializers.DateField(required=False, allow_null=True)


class ThirdPartyModelUpdateSerializer(ThirdPartyModelWriteSerializer):
    usecase = None  # type: ignore[assignment]

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class DocumentationSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The document itself (multipart); its sha256 is computed.")
    url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    sha256 = serializers.CharField(required=False, allow_blank=True, max_length=64)
    received_on = serializers.DateField(required=False, allow_null=True)


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ThirdPartyModel.Status.choices)
    reason = serializers.CharField(max_length=500)
