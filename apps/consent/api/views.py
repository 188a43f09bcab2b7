"""REST endpoints for consent: single events (for an organisation's consent system) and CSV imports."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import visible_to as organisations_visible_to
from apps.accounts.selectors import organisation_ids_for
from apps.consent import services
from apps.consent.api.serializers import (
    ConsentEventSerializer,
    ConsentImportSerializer,
    ConsentImportUploadSerializer,
    ConsentRecordSerializer,
)
from apps.consent.models import ConsentImport, ConsentRecord
from apps.consent.permissions import WRITE_ROLES, imports_visible_to, visible_to
from apps.consent.services import IMPORT_MAX_BYTES
from apps.core.errors import PermissionDenied
from apps.core.uploads import SpoolingUploadHandler, accepts_upload


def _organisation(request: Request, organisation_id: object):
    if organisation_id is None and getattr(request, "organisation", None) is not None:
        organisation_id = request.organisation.id
    return get_object_or_404(organisations_visible_to(request.user), id=organisation_id)


def _may_import(user, request, kwargs) -> None:  # type: ignore[no-untyped-def]
    """Checked before the body is read (which names the organisation): the user imports for some organisation."""
    if not organisation_ids_for(user, WRITE_ROLES):
        raise PermissionDenied()


@extend_schema(tags=["consent"])
class ConsentRecordViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ConsentRecordSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user, "view", ConsentRecord).select_related("subject")
        params = self.request.query_params
        if params.get("purpose"):
            queryset = queryset.filter(purpose=params["purpose"])
        if params.get("subject"):
            queryset = queryset.filter(subject__pseudonym=params["subject"])
        return queryset.order_by("-occurred_at")

    @extend_schema(
        parameters=[OpenApiParameter("purpose", str), OpenApiParameter("subject", str, description="pseudonym")]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ConsentEventSerializer, responses={201: ConsentRecordSerializer})
    def create(self, request: Request) -> Response:
        payload = ConsentEventSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        organisation = _organisation(request, data.pop("organisation", None))
        record = services.consent_event_record(actor=request.user, organisation=organisation, data=data)
        return Response(ConsentRecordSerializer(record).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["consent"])
class ConsentImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConsentImportSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return imports_visible_to(self.request.user).select_related("created_by", "job").order_by("-created_at")

    @extend_schema(
        request={"multipart/form-data": ConsentImportUploadSerializer}, responses={202: ConsentImportSerializer}
    )
    @accepts_upload(
        handler=SpoolingUploadHandler,
        max_file_bytes=IMPORT_MAX_BYTES,
        fields=("file",),
        allowed=_may_import,
        too_large_message=f"The file is larger than {IMPORT_MAX_BYTES // 2**20} MB.",
    )
    def create(self, request: Request) -> Response:
        payload = ConsentImportUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        organisation = _organisation(request, payload.validated_data.get("organisation"))
        upload = payload.validated_data["file"]
        consent_import = services.consent_import_create(
            actor=request.user, organisation=organisation, file_name=upload.name, chunks=upload.chunks()
        )
        return Response(ConsentImportSerializer(consent_import).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="errors")
    def error_report(self, request: Request, pk: str) -> HttpResponse:
        consent_import: ConsentImport = self.get_object()
        response = HttpResponse(consent_import.error_report or "line,column,message\n", content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="consent-import-{consent_import.id}-errors.csv"'
        return response
