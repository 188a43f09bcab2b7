"""REST endpoints of the use-case register."""

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
from apps.usecases import services
from apps.usecases.api.serializers import (
    TransitionSerializer,
    UseCaseRevisionSerializer,
    UseCaseSerializer,
    UseCaseWriteSerializer,
)
from apps.usecases.permissions import visible_to


@extend_schema(tags=["use cases"])
class UseCaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = UseCaseSerializer
    lookup_field = "id"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).select_related("owner").order_by("reference")
        params = self.request.query_params
        if params.get("organisation"):
            queryset = queryset.filter(organisation_id=params["organisation"])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset

    @extend_schema(parameters=[OpenApiParameter("organisation", str), OpenApiParameter("status", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        if request.query_params.get("organisation"):
            try:
                import uuid

                uuid.UUID(request.query_params["organisation"])
            except ValueError:
                raise ValidationFailed("organisation must be a UUID.", {"organisation": ["not a UUID"]})
        return super().list(request, *args, **kwargs)

    @extend_schema(request=UseCaseWriteSerializer, responses={201: UseCaseSerializer})
    def create(self, request: Request) -> Response:
        payload = UseCaseWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        organisation_id = data.pop("organisation", None)
        if organisation_id is None and getattr(request, "organisation", None) is not None:
            organisation_id = request.organisation.id
        organisation = get_object_or_404(organisations_visible_to(request.user), id=organisation_id)
        owner_name = data.pop("owner", None)
        owner = None
        if owner_name:
            owner = User.objects.filter(username=owner_name, is_active=True).first()
            if owner is None:
                raise ValidationFailed("Unknown owner.", {"owner": ["no active user with that username"]})
        usecase = services.usecase_create(actor=request.user, organisation=organisation, data=data, owner=owner)
        return Response(UseCaseSerializer(usecase).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UseCaseWriteSerializer, responses={200: UseCaseSerializer})
    def partial_update(self, request: Request, id: str) -> Response:  # noqa: A002
        usecase = self.get_object()
        payload = UseCaseWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        data.pop("organisation", None)
        data.pop("owner", None)
        usecase = services.usecase_update(actor=request.user, usecase=usecase, data=data)
        return Response(UseCaseSerializer(usecase).data)

    @extend_schema(request=TransitionSerializer, responses={200: UseCaseSerializer})
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, id: str) -> Response:  # noqa: A002
        usecase = self.get_object()
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        usecase = services.usecase_transition(actor=request.user, usecase=usecase, **payload.validated_data)
        return Response(UseCaseSerializer(usecase).data)

    @extend_schema(responses={200: UseCaseRevisionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def revisions(self, request: Request, id: str) -> Response:  # noqa: A002
        usecase = self.get_object()
        revisions = usecase.revisions.select_related("author").order_by("-number")
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(UseCaseRevisionSerializer(page, many=True).data)


UseCaseViewSet.http_method_names = ["get", "post", "patch", "head", "options"]
