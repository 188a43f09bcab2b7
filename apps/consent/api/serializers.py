"""Consent on the wire: events in, records and imports out (raw subject ids are accepted, never returned)."""

from __future__ import annotations

from rest_framework import serializers

from apps.consent.models import ConsentImport, ConsentRecord
from apps.jobs.api.serializers import JobStateSerializerMixin


class ConsentEventSerializer(serializers.Serializer):
    organisation = serializers.UUIDField(required=False, help_text="Defaults to your current organisation.")
    subject_id = serializers.CharField(max_length=300, help_text="The external id; stored only as a pseudonym.")
    purpose = serializers.CharField(max_length=200)
    status = serializers.ChoiceField(choices=ConsentRecord.Status.choices)
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a time zone.")
    notice_version = serializers.CharField(max_length=300, required=False, allow_blank=True)
    channel = serializers.CharField(max_length=300, required=False, allow_blank=True)
    evidence_ref = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ConsentRecordSerializer(serializers.ModelSerializer):
    subject = serializers.CharField(source="subject.pseudonym", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "subject",
            "purpose",
            "status",
            "occurred_at",
            "notice_version",
            "channel",
            "evidence_ref",
            "source",
            "created_at",
        ]


class ConsentImportSerializer(JobStateSerializerMixin, serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = ConsentImport
        fields = [
            "id",
            "file_name",
            "sha256",
            "size_bytes",
            "status",
            "job",
            "lines",
            "valid",
            "invalid",
            "created_records",
            "duplicates",
            "error",
            "created_by",
            "created_at",
        ]


class ConsentImportUploadSerializer(serializers.Serializer):
    organisation = serializers.UUIDField(required=False)
    file = serializers.FileField()
