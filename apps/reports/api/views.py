"""REST endpoints for reports: list, issue, download, verify."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.selectors import roles_in
from apps.core.errors import NotFound, ValidationFailed
from apps.core.uploads import SpoolingUploadHandler, accepts_upload
from apps.reports import services
from apps.reports.api.serializers import (
    ReportRequestSerializer,
    ReportSerializer,
    SigningIdentityImportSerializer,
    SigningIdentitySerializer,
    VerifyResultSerializer,
    VerifyUploadSerializer,
)
from apps.reports.permissions import visible_to

MAX_VERIFY_BYTES = 50 * 1024 * 1024


@extend_schema(tags=["reports"])
class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReportSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).order_by("-created_at")
        params = self.request.query_params
        for name, field in (
            ("kind", "kind"),
            ("usecase", "usecase_id"),
            ("model", "model_version_id"),
            ("organisation", "organisation_id"),
        ):
            if params.get(name):
                queryset = queryset.filter(**{field: params[name]})
        return queryset

    @extend_schema(parameters=[OpenApiParameter(n, str) for n in ("kind", "usecase", "model", "organisation")])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        try:
            return super().list(request, *args, **kwargs)
        except DjangoValidationError:
            raise ValidationFailed("Filters take ids (UUIDs).", {"filter": ["not a UUID"]}) from None

    @extend_schema(request=ReportRequestSerializer, responses={202: ReportSerializer})
    def create(self, request: Request) -> Response:
        payload = ReportRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            subject = services.subject_object(payload.validated_data["kind"], payload.validated_data["subject"])
        except (ObjectDoesNotExist, ValueError, DjangoValidationError):
            raise NotFound() from None
        if not roles_in(request.user, services.subject_organisation(subject)):
            raise NotFound()
        data = payload.validated_data
        period = (data.get("period_from"), data.get("period_to")) if {"period_from", "period_to"} & set(data) else None
        if period is None and data["kind"] in services.PERIOD_KINDS:
            raise ValidationFailed(
                "A post-market monitoring report covers a period: give period_from and period_to.",
                {"period_from": ["required"], "period_to": ["required"]},
            )
        if period is not None and (period[0] is None or period[1] is None):
            raise ValidationFailed("Give both period_from and period_to.", {"period": ["both ends"]})
        report = services.report_request(actor=request.user, kind=data["kind"], subject=subject, period=period)
        return Response(ReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> HttpResponse:
        report = self.get_object()
        try:
            data = services.report_file(report)
        except FileNotFoundError:
            raise NotFound("The file is missing.") from None
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
        return response

    @extend_schema(request={"multipart/form-data": VerifyUploadSerializer}, responses={200: VerifyResultSerializer})
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    @accepts_upload(
        handler=SpoolingUploadHandler,
        max_file_bytes=MAX_VERIFY_BYTES,
        fields=("file",),
        too_large_message="The file is larger than 50 MB: it is not a report this portal issued.",
    )
    def verify(self, request: Request) -> Response:
        payload = VerifyUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        if upload.size > MAX_VERIFY_BYTES:
            raise ValidationFailed("The file is larger than 50 MB.", {"file": ["too large"]})
        result = services.report_verify(upload.read())
        report, newer = result["report"], result["superseded_by"]
        visible = report is not None and bool(roles_in(request.user, report.organisation))
        return Response(
            VerifyResultSerializer(
                {
                    **result,
                    "report": report.reference if visible else None,
                    "superseded_by": newer.reference if visible and newer is not None else None,
                }
            ).data
        )


@extend_schema(tags=["reports"])
class SigningIdentityViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The certificates that sign each visible organisation's reports; org admins import their own."""

    serializer_class = SigningIdentitySerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        from apps.accounts.selectors import organisations_visible_to
        from apps.reports.models import SigningIdentity

        return SigningIdentity.objects.filter(organisation__in=organisations_visible_to(self.request.user)).order_by(
            "-created_at"
        )

    @extend_schema(request=SigningIdentityImportSerializer, responses={201: SigningIdentitySerializer})
    def create(self, request: Request) -> Response:
        from apps.accounts.selectors import organisations_visible_to

        payload = SigningIdentityImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        organisation = organisations_visible_to(request.user).filter(id=data["organisation"]).first()
        if organisation is None:
            raise NotFound()
        identity = services.signing_identity_import(
            actor=request.user,
            organisation=organisation,
            cert_pem=data["certificate_pem"],
            key_pem=data["key_pem"],
            key_password=data["key_password"],
        )
        return Response(SigningIdentitySerializer(identity).data, status=status.HTTP_201_CREATED)
