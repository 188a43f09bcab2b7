"""REST endpoints for the signed-in user, organisations, memberships, auditor grants and API tokens."""

from __future__ import annotations

from django.db.models import Q
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
    AuditorGrantCreateSerializer,
    AuditorGrantSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MeSerializer,
    OrganisationSerializer,
    OrganisationUpdateSerializer,
)
from apps.accounts.models import ApiToken, AuditorGrant, Membership, Organisation, User
from apps.accounts.permissions import visible_to
from apps.accounts.selectors import organisations_visible_to, roles_in
from apps.core.errors import ValidationFailed


class OrganisationQuery(serializers.Serializer):
    organisation = serializers.UUIDField()


def _user_by_identifier(identifier: str) -> User:
    user = User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier), is_active=True).first()
    if user is None:
        raise ValidationFailed("No active user with that username or e-mail.", {"user": ["unknown user"]})
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
        membership = services.membership_add(
            actor=request.user,
            organisation=organisation,
            user=_user_by_identifier(payload.validated_data["user"]),
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

    @extend_schema(request=AuditorGrantCreateSerializer, responses={201: AuditorGrantSerializer})
    def create(self, request: Request) -> Response:
        payload = AuditorGrantCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organisation = get_object_or_404(organisations_visible_to(request.user), id=data["organisation"])
        grant = services.auditor_grant_create(
            actor=request.user,
            organisation=organisation,
            user=_user_by_identifier(data["user"]),
            reason=data["reason"],
            expires_at=data["expires_at"],
        )
        return Response(AuditorGrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AuditorGrantSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        grant = services.auditor_grant_revoke(actor=request.user, grant=self.get_object())
        return Response(AuditorGrantSerializer(grant).data)


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
