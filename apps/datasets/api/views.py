"""REST endpoints for datasets and versions (uploads are encrypted while they stream, as in the browser)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.core.uploads import accepts_upload
from apps.datasets import services
from apps.datasets.api.serializers import (
    AnonymisationRequestSerializer,
    AnonymisationSerializer,
    CoverageSerializer,
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetVersionSerializer,
    DatasheetSerializer,
    DatasheetWriteSerializer,
    RolesSerializer,
    VersionUploadSerializer,
)
from apps.datasets.models import Anonymisation, DatasetVersion
from apps.datasets.permissions import visible_to
from apps.datasets.selectors import version_coverage
from apps.datasets.uploads import EncryptingUploadHandler, dataset_upload_limit
from apps.jobs.api.serializers import JobSerializer
from apps.usecases.permissions import visible_to as usecases_visible_to


def _may_upload(user, request, kwargs) -> None:  # type: ignore[no-untyped-def]
    """Checked before the body is read, as the action would: unseen dataset 404, seen but not writable 403."""
    try:
        if not visible_to(user).filter(id=kwargs["pk"]).exists():
            raise NotFound()
    except DjangoValidationError:
        raise NotFound() from None
    if not visible_to(user, "change").filter(id=kwargs["pk"]).exists():
        raise PermissionDenied()


@extend_schema(tags=["datasets"])
class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSerializer
    parser_classes = [JSONParser, MultiPartParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user).order_by("name")

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def create(self, request: Request) -> Response:
        payload = DatasetCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        usecase = get_object_or_404(usecases_visible_to(request.user), id=payload.validated_data["usecase"])
        dataset = services.dataset_create(
            actor=request.user,
            usecase=usecase,
            name=payload.validated_data["name"],
            description=payload.validated_data["description"],
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses={200: DatasetVersionSerializer(many=True)})
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": VersionUploadSerializer},
        responses={201: DatasetVersionSerializer, 200: DatasetVersionSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    @accepts_upload(
        handler=EncryptingUploadHandler, max_file_bytes=dataset_upload_limit, fields=("file",), allowed=_may_upload
    )
    def versions(self, request: Request, pk: str) -> Response:
        dataset = self.get_object()
        if request.method == "GET":
            versions = dataset.versions.prefetch_related("columns").order_by("number")
            page = self.paginate_queryset(versions)
            return self.get_paginated_response(DatasetVersionSerializer(page, many=True).data)
        upload = request.FILES.get("file")
        if upload is None or not hasattr(upload, "incoming"):
            raise ValidationFailed("Attach the data as the multipart field 'file'.", {"file": ["required"]})
        payload = VersionUploadSerializer(
            data={"retention_until": request.data.get("retention_until") or None, "file": upload}
        )
        payload.is_valid(raise_exception=True)
        version, created = services.dataset_version_upload(
            actor=request.user,
            dataset=dataset,
            incoming=upload.incoming,
            sha256=upload.sha256,
            file_name=upload.name,
            retention_until=payload.validated_data["retention_until"],
        )
        return Response(
            DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema(tags=["datasets"])
class DatasetVersionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetVersionSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return (
            visible_to(self.request.user, "view", DatasetVersion)
            .select_related("dataset__organisation")
            .prefetch_related("columns")
        )

    @extend_schema(request=RolesSerializer, responses={200: DatasetVersionSerializer})
    @action(detail=True, methods=["post"])
    def roles(self, request: Request, pk: str) -> Response:
        payload = RolesSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = services.dataset_version_confirm_roles(
            actor=request.user, version=self.get_object(), roles=payload.validated_data["roles"]
        )
        return Response(DatasetVersionSerializer(version).data)

    @extend_schema(responses={200: CoverageSerializer})
    @action(detail=True, methods=["get"])
    def coverage(self, request: Request, pk: str) -> Response:
        coverage = version_coverage(self.get_object())
        if coverage is None:
            raise AttestError("invalid_state", "Mark a subject-key column first: coverage matches rows with consent.")
        return Response(coverage)

    @extend_schema(request=AnonymisationRequestSerializer, responses={202: AnonymisationSerializer})
    @action(detail=True, methods=["post"])
    def anonymisations(self, request: Request, pk: str) -> Response:
        from apps.datasets.anonymisation import anonymisation_request

        payload = AnonymisationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = anonymisation_request(actor=request.user, version=self.get_object(), config=payload.validated_data)
        return Response(AnonymisationSerializer(item).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def prepare(self, request: Request, pk: str) -> Response:
        job = services.dataset_version_prepare_start(actor=request.user, version=self.get_object())
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses={200: DatasheetSerializer})
    @extend_schema(methods=["PUT"], request=DatasheetWriteSerializer, responses={200: DatasheetSerializer})
    @action(detail=True, methods=["get", "put"])
    def datasheet(self, request: Request, pk: str) -> Response:
        version = self.get_object()
        if request.method == "PUT":
            payload = DatasheetWriteSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            revision = services.datasheet_save(
                actor=request.user, version=version, content=payload.validated_data["content"]
            )
            return Response(DatasheetSerializer(revision).data)
        latest = version.datasheets.order_by("-number").first()
        if latest is None:
            raise AttestError("not_found", "This version has no datasheet yet; a steward creates it by opening it.")
        return Response(DatasheetSerializer(latest).data)


@extend_schema(tags=["datasets"])
class AnonymisationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AnonymisationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return (
            Anonymisation.objects.filter(version__in=visible_to(self.request.user, "view", DatasetVersion))
            .select_related("job")
            .order_by("-created_at")
        )

    @extend_schema(request=None, responses={202: AnonymisationSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        from apps.datasets.anonymisation import anonymisation_apply_start

        item = anonymisation_apply_start(actor=request.user, anonymisation=self.get_object())
        return Response(AnonymisationSerializer(item).data, status=status.HTTP_202_ACCEPTED)
