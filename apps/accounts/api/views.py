"""REST endpoints for the signed-in user, organisations, memberships, auditor grants and API tokens."""

from __future__ import annotations

from django.contrib.auth import logout as auth_logout
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import services
from apps.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    AuditorGrantSerializer,
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MeSerializer,
    OrganisationSerializer,
    OrganisationUpdateSerializer,
    UserSessionSerializer,
)
from apps.accounts.models import ApiToken, AuditorGrant, Invitation, Membership, Organisation, User, UserSession
from apps.accounts.permissions import can, visible_to
from apps.accounts.selectors import (
    invitation_by_token,
    organisation_members,
    organisations_visible_to,
    roles_in,
    sessions_of,
)
from apps.accounts.sessions import session_key_hash
from apps.core.errors import InvalidState, PermissionDenied, ValidationFailed


class OrganisationQuery(serializers.Serializer):
    organisation = serializers.UUIDField()


def _member_by_username(organisation: Organisation, username: str) -> User:
    """A current member, looked up among the organisation's members only: no answer about anyone else."""
    user = organisation_members(organisation).filter(username=username.strip()).first()
    if user is None:
        raise ValidationFailed(
            "No member of this organisation has that username; invite people by e-mail (POST /invitations/).",
            {"user": ["not a member of this organisation"]},
        )
    return user


@extend_schema(tags=["accounts"], responses={200: MeSerializer})
class MeView(APIView):
    """The signed-in user with their organisations and roles there."""

    def get(self, request: Request) -> Response:
        user = request.user
        organisations = [
            {"id": o.id, "name": o.name, "roles": sorted(roles_in(user, o))}
            for o in organisations_visible_to(user).order_by("name")
        ]
        return Response(
            {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "full_name": user.full_name,
                "organisations": organisations,
            }
        )


@extend_schema(tags=["accounts"])
class OrganisationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrganisationSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user, "view", Organisation).order_by("name")

    @extend_schema(request=OrganisationUpdateSerializer, responses={200: OrganisationSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        organisation = self.get_object()
        payload = OrganisationUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        organisation = services.organisation_update(
            actor=request.user, organisation=organisation, data=dict(payload.validated_data)
        )
        return Response(OrganisationSerializer(organisation).data)


@extend_schema(tags=["accounts"])
class MembershipViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = MembershipSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user, "view", Membership).order_by("organisation__name", "user__username")
        organisation = self.request.query_params.get("organisation")
        if organisation:
            queryset = queryset.filter(organisation_id=organisation)
        return queryset

    @extend_schema(parameters=[OpenApiParameter("organisation", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        if request.query_params.get("organisation"):
            OrganisationQuery(data=request.query_params).is_valid(raise_exception=True)
        return super().list(request, *args, **kwargs)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request) -> Response:
        payload = MembershipCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        organisation = get_object_or_404(
            organisations_visible_to(request.user), id=payload.validated_data["organisation"]
        )
        if not can(request.user, "manage", organisation):
            raise PermissionDenied("Only org admins can add members.")
        membership = services.membership_add(
            actor=request.user,
            organisation=organisation,
            user=_member_by_username(organisation, payload.validated_data["user"]),
            role=payload.validated_data["role"],
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        services.membership_remove(actor=request.user, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["accounts"])
class AuditorGrantViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditorGrantSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user, "view", AuditorGrant).order_by("-created_at")

    @extend_schema(request=None, responses={200: AuditorGrantSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        grant = services.auditor_grant_revoke(actor=request.user, grant=self.get_object())
        return Response(AuditorGrantSerializer(grant).data)


@extend_schema(tags=["accounts"])
class InvitationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Invitations of the organisations the user administers; anyone signed in accepts one with its token."""

    serializer_class = InvitationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user, "view", Invitation).order_by("-created_at")

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def create(self, request: Request) -> Response:
        payload = InvitationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organisation = get_object_or_404(organisations_visible_to(request.user), id=data.pop("organisation"))
        invitation = services.invitation_create(actor=request.user, organisation=organisation, **data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: InvitationSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        invitation = services.invitation_revoke(actor=request.user, invitation=self.get_object())
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(request=InvitationAcceptSerializer, responses={200: InvitationAcceptedSerializer})
    @action(detail=False, methods=["post"])
    def accept(self, request: Request) -> Response:
        payload = InvitationAcceptSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitation = invitation_by_token(payload.validated_data["token"])
        if invitation is None:
            raise InvalidState("This invitation was used, revoked or has expired: ask for a new one.")
        services.invitation_accept(actor=request.user, invitation=invitation)
        return Response(
            {
                "organisation": invitation.organisation_id,
                "organisation_name": invitation.organisation.name,
                "kind": invitation.kind,
                "role": invitation.role,
            }
        )


@extend_schema(tags=["accounts"])
class ApiTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ApiTokenSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user, "view", ApiToken)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, secret = services.api_token_create(actor=request.user, **payload.validated_data)
        return Response({**ApiTokenSerializer(token).data, "secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        token = services.api_token_revoke(actor=request.user, token=self.get_object())
        return Response(ApiTokenSerializer(token).data)


class UserSessionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own signed-in browser sessions (never anyone else's); revoking one signs that browser out."""

    serializer_class = UserSessionSerializer
    queryset = UserSession.objects.none()  # for the schema's path parameter type; requests use get_queryset

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return sessions_of(self.request.user)

    def get_serializer_context(self):  # type: ignore[no-untyped-def]
        session = getattr(self.request, "session", None)
        key = session.session_key if session is not None else None
        return {**super().get_serializer_context(), "current_key_hash": session_key_hash(key) if key else ""}

    @extend_schema(request=None, responses={200: UserSessionSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        row = self.get_object()
        data = self.get_serializer(row).data
        services.user_session_revoke(actor=request.user, user_session=row)
        if data["current"]:
            # The session making this call is gone: flush it so the end of the request saves nothing into it.
            auth_logout(request._request)
        return Response(data)
