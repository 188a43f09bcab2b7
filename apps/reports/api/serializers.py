from __future__ import annotations

from rest_framework import serializers

from apps.jobs.api.serializers import JobStateSerializerMixin
from apps.reports.models import Report, SigningIdentity


class ReportSerializer(JobStateSerializerMixin, serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True, allow_null=True)
    model_version = serializers.UUIDField(source="model_version_id", read_only=True, allow_null=True)
    superseded_by = serializers.UUIDField(source="superseded_by_id", read_only=True, allow_null=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    signer_fingerprint = serializers.CharField(source="signer.fingerprint", read_only=True, default="")

    class Meta:
        model = Report
        fields = [
            "id",
            "reference",
            "organisation",
            "kind",
            "subject_type",
            "subject_id",
            "subject_label",
            "usecase",
            "model_version",
            "version",
            "status",
            "sha256",
            "size_bytes",
            "pages",
            "signer_fingerprint",
            "superseded_by",
            "period_start",
            "period_end",
            "job",
            "error",
            "created_at",
        ]


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Report.Kind.choices)
    subject = serializers.CharField(
        max_length=64,
        help_text="id of the model version, dataset version, use case, review, organisation or deployment the report "
        "is about",
    )
    period_from = serializers.DateField(
        required=False, help_text="first day of the period (post-market monitoring reports only)"
    )
    period_to = serializers.DateField(required=False, help_text="last day of the period, inclusive")


class VerifyUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class VerifyResultSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    authentic = serializers.BooleanField()
    issued = serializers.BooleanField()
    unchanged = serializers.BooleanField()
    verdict = serializers.CharField()
    signature = serializers.DictField()
    report = serializers.CharField(allow_null=True)
    superseded_by = serializers.CharField(allow_null=True)


class SigningIdentitySerializer(serializers.ModelSerializer):
    """The public side of a signing identity: never the key."""

    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = SigningIdentity
        fields = [
            "id",
            "organisation",
            "subject",
            "fingerprint",
            "self_signed",
            "not_after",
            "certificate_pem",
            "active",
            "retired_at",
            "created_at",
        ]

    def get_active(self, identity: SigningIdentity) -> bool:
        return identity.retired_at is None


class SigningIdentityImportSerializer(serializers.Serializer):
    organisation = serializers.UUIDField()
    certificate_pem = serializers.CharField(max_length=64 * 1024, trim_whitespace=False)
    key_pem = serializers.CharField(max_length=64 * 1024, trim_whitespace=False, write_only=True)
    key_password = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, default="", write_only=True, trim_whitespace=False
    )
