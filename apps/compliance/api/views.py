"""REST endpoints for compliance: frameworks (and an organisation's own upload), a use case's progress and
requirement statuses, linking evidence, confirming a requirement, and requesting the signed statement."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Organisation
from apps.accounts.selectors import organisation_ids_for
from apps.compliance import services
from apps.compliance.api.serializers import (
    EvidenceLinkSerializer,
    FrameworkSerializer,
    FrameworkUploadSerializer,
    ProgressSerializer,
    RequirementRefSerializer,
    RequirementStatusSerializer,
    StatementSerializer,
)
from apps.compliance.permissions import visible_usecases
from apps.compliance.selectors import framework_for, frameworks_for, progress_for, requirement_statuses
from apps.core.errors import NotFound
from apps.core.uploads import accepts_upload
from apps.reports.api.serializers import ReportSerializer


def _framework_key(user: Any, usecase: Any, key: str) -> str:
    framework = framework_for(user, key)
    if framework is None or framework.organisation_id not in (None, usecase.organisation_id):
        raise NotFound("No such framework.")
    return framework.key


@extend_schema(tags=["compliance"])
class FrameworkViewSet(viewsets.ViewSet):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=FrameworkSerializer(many=True))
    def list(self, request: Request) -> Response:
        frameworks = frameworks_for(organisation_ids_for(request.user))
        return Response(FrameworkSerializer(frameworks, many=True).data)

    @extend_schema(request=FrameworkUploadSerializer, responses={201: FrameworkSerializer})
    @accepts_upload(max_file_bytes=services.MAX_EVIDENCE_BYTES, fields=("file",))
    def create(self, request: Request) -> Response:
        payload = FrameworkUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organisation = Organisation.objects.filter(id=data["organisation"]).first()
        if organisation is None:
            raise NotFound()
        version = services.framework_upload(
            actor=request.user,
            organisation=organisation,
            data=data["file"].read(),
            filename=data["file"].name,
            key=data.get("key", ""),
            name=data.get("name", ""),
            version=data.get("version", ""),
            kind=data["kind"],
        )
        return Response(FrameworkSerializer(version.framework).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["compliance"], parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)])
class UseCaseComplianceViewSet(viewsets.ViewSet):
    """Compliance of one use case (``{id}`` is the use case's id)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def _usecase(self, pk: Any) -> Any:
        try:
            usecase = visible_usecases(self.request.user).select_related("organisation").filter(id=pk).first()
        except DjangoValidationError:
            usecase = None
        if usecase is None:
            raise NotFound()
        return usecase

    @extend_schema(responses=ProgressSerializer(many=True))
    def retrieve(self, request: Request, pk: Any = None) -> Response:
        return Response(ProgressSerializer(progress_for(self._usecase(pk)), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("framework", str, description="A framework key; all frameworks when absent."),
            OpenApiParameter("status", str),
        ],
        responses=RequirementStatusSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def requirements(self, request: Request, pk: Any = None) -> Response:
        usecase = self._usecase(pk)
        key = request.query_params.get("framework") or ""
        if key:
            statuses = requirement_statuses(usecase, _framework_key(request.user, usecase, key))
        else:
            statuses = [
                s for f in frameworks_for({usecase.organisation_id}) for s in requirement_statuses(usecase, f.key)
            ]
        wanted = request.query_params.get("status")
        if wanted:
            statuses = [s for s in statuses if s.status == wanted]
        return Response(RequirementStatusSerializer(statuses, many=True).data)

    @extend_schema(request=EvidenceLinkSerializer, responses={201: RequirementStatusSerializer})
    @action(detail=True, methods=["post"])
    @accepts_upload(max_file_bytes=services.MAX_EVIDENCE_BYTES, fields=("file",))
    def evidence(self, request: Request, pk: Any = None) -> Response:
        usecase = self._usecase(pk)
        payload = EvidenceLinkSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        key = _framework_key(request.user, usecase, data["framework"])
        upload = data.get("file")
        services.evidence_link_add(
            actor=request.user,
            usecase=usecase,
            framework_key=key,
            requirement_code=data["requirement"],
            label=data["label"],
            url=data.get("url", ""),
            file_name=upload.name if upload else "",
            file_bytes=upload.read() if upload else None,
            expires_on=data.get("expires_on"),
        )
        return Response(self._one(usecase, key, data["requirement"]), status=status.HTTP_201_CREATED)

    @extend_schema(request=RequirementRefSerializer, responses={201: RequirementStatusSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: Any = None) -> Response:
        usecase = self._usecase(pk)
        payload = RequirementRefSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        key = _framework_key(request.user, usecase, payload.validated_data["framework"])
        code = payload.validated_data["requirement"]
        services.requirement_confirm(actor=request.user, usecase=usecase, framework_key=key, requirement_code=code)
        return Response(self._one(usecase, key, code), status=status.HTTP_201_CREATED)

    @extend_schema(request=StatementSerializer, responses={202: ReportSerializer})
    @action(detail=True, methods=["post"])
    def statement(self, request: Request, pk: Any = None) -> Response:
        usecase = self._usecase(pk)
        payload = StatementSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        report = services.compliance_statement_request(
            actor=request.user, usecase=usecase, framework_key=payload.validated_data["framework"]
        )
        return Response(ReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)

    def _one(self, usecase: Any, key: str, code: str) -> dict[str, Any]:
        match = next(s for s in requirement_statuses(usecase, key) if s.code == code)
        return RequirementStatusSerializer(match).data
