"""Shapes of use cases on the wire; validation of content happens in the services."""

from __future__ import annotations

from rest_framework import serializers

from apps.usecases.models import UseCase, UseCaseRevision
from apps.usecases.services import TRANSITIONS


class UseCaseSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)

    class Meta:
        model = UseCase
        fields = [
            "id",
            "organisation",
            "reference",
            "owner",
            "status",
            "revision",
            "created_at",
            "updated_at",
            "title",
            "purpose",
            "description",
            "lawful_basis",
            "special_category",
            "art9_condition",
            "data_subject_categories",
            "personal_data_categories",
            "recipients",
            "third_country_transfers",
            "retention",
            "security_measures",
            "risk_tier",
            "annex_iii_area",
            "risk_justification",
            "affected_groups",
            "automated_decisions",
            "ai_act_role",
            "dpia",
            "fairness_policy",
            "privacy_policy",
        ]
        read_only_fields = [
            "id",
            "organisation",
            "reference",
            "owner",
            "status",
            "revision",
            "created_at",
            "updated_at",
        ]


class UseCaseWriteSerializer(serializers.Serializer):
    """Accepted fields; the service checks their meaning (legal bases, DPIA structure, policies)."""

    organisation = serializers.UUIDField(required=False, help_text="Defaults to your current organisation.")
    owner = serializers.CharField(required=False, help_text="Username of the use-case owner (default: you).")
    title = serializers.CharField(max_length=200, required=False)
    purpose = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    lawful_basis = serializers.CharField(required=False)
    special_category = serializers.BooleanField(required=False)
    art9_condition = serializers.CharField(required=False, allow_blank=True)
    data_subject_categories = serializers.ListField(child=serializers.CharField(), required=False)
    personal_data_categories = serializers.ListField(child=serializers.CharField(), required=False)
    recipients = serializers.ListField(child=serializers.CharField(), required=False)
    third_country_transfers = serializers.ListField(child=serializers.DictField(), required=False)
    retention = serializers.CharField(max_length=300, required=False)
    security_measures = serializers.CharField(required=False, allow_blank=True)
    risk_tier = serializers.CharField(required=False)
    annex_iii_area = serializers.CharField(required=False, allow_blank=True)
    risk_justification = serializers.CharField(required=False, allow_blank=True)
    affected_groups = serializers.ListField(child=serializers.CharField(), required=False)
    automated_decisions = serializers.BooleanField(required=False)
    ai_act_role = serializers.ChoiceField(choices=["provider", "deployer", "both"], required=False)
    dpia = serializers.DictField(required=False)
    fairness_policy = serializers.DictField(required=False)
    privacy_policy = serializers.DictField(required=False)


class TransitionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(TRANSITIONS))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class UseCaseRevisionSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = UseCaseRevision
        fields = ["number", "sha256", "changed_fields", "author", "note", "created_at", "snapshot"]
