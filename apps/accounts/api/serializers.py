from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import ApiToken, AuditorGrant, Invitation, Membership, Organisation, Role, UserSession


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "id",
            "name",
            "slug",
            "country",
            "address",
            "controller_contact",
            "dpo_name",
            "dpo_email",
            "processing_purposes",
            "min_cell_size",
            "created_at",
        ]
        read_only_fields = ["id", "slug", "created_at"]


class OrganisationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    address = serializers.CharField(required=False, allow_blank=True)
    controller_contact = serializers.CharField(max_length=200, required=False, allow_blank=True)
    dpo_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    dpo_email = serializers.EmailField(required=False, allow_blank=True)
    processing_purposes = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    min_cell_size = serializers.IntegerField(min_value=2, max_value=1000, required=False)


class MembershipSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    user_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organisation", "user", "user_id", "role", "created_at"]


class MembershipCreateSerializer(serializers.Serializer):
    organisation = serializers.UUIDField()
    user = serializers.CharField(
        help_text="Username of a current member of the organisation; anyone else is invited (POST /invitations/)."
    )
    role = serializers.ChoiceField(choices=Role.choices)


class AuditorGrantSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = AuditorGrant
        fields = ["id", "organisation", "user", "reason", "expires_at", "revoked_at", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "organisation",
            "kind",
            "role",
            "email",
            "status",
            "invited_by",
            "expires_at",
            "reason",
            "access_expires_at",
            "decided_at",
            "created_at",
        ]


class InvitationCreateSerializer(serializers.Serializer):
    organisation = serializers.UUIDField()
    email = serializers.EmailField(help_text="Where the single-use link is sent; known to Attest or not.")
    kind = serializers.ChoiceField(choices=Invitation.Kind.choices, default=Invitation.Kind.MEMBERSHIP)
    role = serializers.ChoiceField(choices=Role.choices, required=False, help_text="For a membership.")
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    access_expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="For auditor access: when it ends."
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == Invitation.Kind.MEMBERSHIP and not attrs.get("role"):
            raise serializers.ValidationError({"role": ["This field is required for a membership."]})
        return attrs


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, help_text="The token from the invitation's link.")


class InvitationAcceptedSerializer(serializers.Serializer):
    organisation = serializers.UUIDField()
    organisation_name = serializers.CharField()
    kind = serializers.CharField()
    role = serializers.CharField()


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "created_at", "last_used_at", "expires_at", "revoked_at"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Defaults to 90 days from now (ATTEST_API_TOKEN_DEFAULT_DAYS); at most 365 days.",
    )
    scope = serializers.ChoiceField(
        choices=ApiToken.Scope.choices,
        default=ApiToken.Scope.READ_WRITE,
        help_text="read: GET, HEAD and OPTIONS only; any other method answers 403 token_read_only.",
    )


class UserSessionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="Whether this is the session making the request.")

    class Meta:
        model = UserSession
        fields = ["id", "device", "network", "signed_in_at", "last_seen_at", "current"]

    def get_current(self, row: UserSession) -> bool:
        return bool(self.context.get("current_key_hash")) and row.key_hash == self.context["current_key_hash"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]


class MeOrganisationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    organisations = MeOrganisationSerializer(many=True)
