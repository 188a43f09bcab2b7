"""REST endpoints of third-party models; every write is one service call of ``apps.thirdparty.services``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.deployments.api.alerts import is_uuid
from apps.thirdparty import services
from apps.thirdparty.api.serializers import (
    DocumentationSerializer,
    StatusSerializer,
    ThirdPartyModelSerializer,
    ThirdPartyModelUpdateSerializer,
    ThirdPartyModelWriteSerializer,
)
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.permissions import visible_to
from apps.usecases.permissions import visible_to as usecases_visible_to


@extend_schema(tags=["third-party models"])
class ThirdPartyModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ThirdPartyModelSerializer
    lookup_field = "id"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).select_related("created_by")
        params = self.request.query_params
        if params.get("usecase"):
            wanted = params["usecase"]
            queryset = queryset.filter(usecase_id=wanted) if is_uuid(wanted) else queryset.none()
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset.order_by("supplier", "name", "version", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter("usecase", OpenApiTypes.UUID),
            OpenApiParameter("status", str, enum=ThirdPartyModel.Status.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ThirdPartyModelWriteSerializer, responses={201: ThirdPartyModelSerializer})
    def create(self, request: Request) -> Response:
        payload = ThirdPartyModelWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        usecase = get_object_or_404(usecases_visible_to(request.user), id=data.pop("usecase"))
        model = services.thirdparty_register(actor=request.user, usecase=usecase, data=data)
        return Response(ThirdPartyModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ThirdPartyModelUpdateSerializer, responses={200: ThirdPartyModelSerializer})
    def partial_update(self, request: Request, id: str) -> Response:  # noqa: A002
        model = self.get_object()
        payload = ThirdPartyModelUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = services.thirdparty_update(actor=request.user, model=model, data=dict(payload.validated_data))
        return Response(ThirdPartyModelSerializer(model).data)

    @extend_schema(request=DocumentationSerializer, responses={200: ThirdPartyModelSerializer})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, MultiPartParser])
    def documentation(self, request: Request, id: str) -> Response:  # noqa: A002
        model = self.get_object()
        payload = DocumentationSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        upload = data.get("file")
        model = services.thirdparty_record_documentation(
            actor=request.user,
            model=model,
            content=upload.read() if upload else None,
            file_name=upload.name if upload else "",
            url=data.get("url") or "",
            sha256=data.get("sha256") or "",
            received_on=data.get("received_on"),
        )
        return Response(ThirdPartyModelSerializer(model).data)

    @extend_schema(request=StatusSerializer, responses={200: ThirdPartyModelSerializer})
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, id: str) -> Response:  # noqa: A002
        payload = StatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = services.thirdparty_set_status(
            actor=request.user,
            model=self.get_object(),
            status=payload.validated_data["status"],
            reason=payload.validated_data["reason"],
        )
        return Response(ThirdPartyModelSerializer(model).data)
