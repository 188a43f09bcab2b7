from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True, allow_null=True)
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "created_at",
            "organisation",
            "actor",
            "request_id",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    """The only filters the trail accepts; each is applied explicitly."""

    organisation = serializers.UUIDField(required=False)
    action = serializers.CharField(required=False, max_length=100)
    object_type = serializers.CharField(required=False, max_length=100)
    object_id = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=200)
    request_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditExportFilterSerializer(AuditFilterSerializer):
    format = serializers.ChoiceField(choices=["csv", "json"], default="csv")


class AuditHeadSerializer(serializers.Serializer):
    """One organisation's chain head (organisation null: the platform chain)."""

    organisation = serializers.UUIDField(allow_null=True)
    sequence = serializers.IntegerField()
    hash = serializers.CharField()


class ChainVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    head_sequence = serializers.IntegerField()
    head_hash = serializers.CharField()
    broken_sequence = serializers.IntegerField(allow_null=True)
    broken_event_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    chain = serializers.CharField(help_text="The organisation's id, or 'platform'.")
    published_sequence = serializers.IntegerField(
        allow_null=True,
        help_text="The last head published (head API, signed audit extract) the chain was checked against.",
    )
    published_at = serializers.DateTimeField(allow_null=True)
