"""REST endpoints of data-subject requests; every write is one service call of ``apps.rights.services``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import User
from apps.accounts.permissions import visible_to as organisations_visible_to
from apps.core.errors import ValidationFailed
from apps.rights import selectors, services
from apps.rights.api.serializers import (
    RightsAssignSerializer,
    RightsDecideSerializer,
    RightsExecuteSerializer,
    RightsExtendSerializer,
    SubjectRequestCreateSerializer,
    SubjectRequestDetailSerializer,
    SubjectRequestSerializer,
)
from apps.rights.models import SubjectRequest
from apps.rights.permissions import visible_to
from apps.training.models import ModelVersion

UUID_PATTERN = r"[0-9a-fA-F-]{36}"


def _user(user_id: object) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed("Unknown assignee.", {"assignee": ["unknown"]})
    return user


@extend_schema(tags=["rights"])
class SubjectRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = UUID_PATTERN

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return SubjectRequestSerializer if self.action == "list" else SubjectRequestDetailSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if self.action == "list":
            params = self.request.query_params
            show = params.get("show", "all")
            return selectors.requests_for(
                self.request.user, None, show=show if show in selectors.FILTERS else "all", kind=params.get("kind", "")
            )
        return visible_to(self.request.user).prefetch_related("decisions__decided_by")

    @extend_schema(
        parameters=[
            OpenApiParameter("show", str, enum=list(selectors.FILTERS)),
            OpenApiParameter("kind", str, enum=SubjectRequest.Kind.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=SubjectRequestCreateSerializer, responses={201: SubjectRequestDetailSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        payload = SubjectRequestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organisation_id = data.get("organisation") or getattr(getattr(request, "organisation", None), "id", None)
        organisation = get_object_or_404(organisations_visible_to(request.user), id=organisation_id)
        item = services.subject_request_register(
            actor=request.user,
            organisation=organisation,
            kind=data["kind"],
            identifier=data["identifier"],
            identity_verification=data["identity_verification"],
            received_on=data.get("received_on"),
            purposes=data.get("purposes") or (),
            assignee=_user(data.get("assignee")),
        )
        return Response(SubjectRequestDetailSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RightsAssignSerializer, responses={200: SubjectRequestDetailSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        payload = RightsAssignSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.subject_request_assign(
            actor=request.user, request=self.get_object(), assignee=_user(payload.validated_data["assignee"])
        )
        return Response(SubjectRequestDetailSerializer(item).data)

    @extend_schema(request=RightsExtendSerializer, responses={200: SubjectRequestDetailSerializer})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str) -> Response:
        payload = RightsExtendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.subject_request_extend(
            actor=request.user, request=self.get_object(), reason=payload.validated_data["reason"]
        )
        return Response(SubjectRequestDetailSerializer(item).data)

    @extend_schema(request=RightsDecideSerializer, responses={201: SubjectRequestDetailSerializer})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = RightsDecideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        model_version = ModelVersion.objects.filter(
            pk=data["model_version"], organisation_id=item.organisation_id
        ).first()
        if model_version is None:
            raise ValidationFailed("Name a model of this organisation.", {"model_version": ["unknown"]})
        services.subject_request_decide(
            actor=request.user,
            request=item,
            model_version=model_version,
            decision=data["decision"],
            justification=data.get("justification", ""),
        )
        item.refresh_from_db()
        return Response(SubjectRequestDetailSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RightsExecuteSerializer, responses={202: SubjectRequestDetailSerializer})
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = RightsExecuteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.subject_request_execute(
            actor=request.user, request=item, corrections=payload.validated_data.get("corrections")
        )
        item.refresh_from_db()
        return Response(SubjectRequestDetailSerializer(item).data, status=status.HTTP_202_ACCEPTED)
