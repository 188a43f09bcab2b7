"""REST endpoints for jobs: list, detail with progress, cancel, and the diagnostics round trip."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import visible_to as organisations_visible_to
from apps.jobs import services
from apps.jobs.api.serializers import DiagnosticsRequestSerializer, JobSerializer
from apps.jobs.permissions import visible_to


@extend_schema(tags=["jobs"])
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).select_related("created_by").order_by("-created_at")
        params = self.request.query_params
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset

    @extend_schema(parameters=[OpenApiParameter("kind", str), OpenApiParameter("status", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = services.job_cancel(actor=request.user, job=self.get_object())
        return Response(JobSerializer(job).data)

    @extend_schema(request=DiagnosticsRequestSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"])
    def diagnostics(self, request: Request) -> Response:
        payload = DiagnosticsRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        organisation_id = payload.validated_data.get("organisation")
        if organisation_id is None and getattr(request, "organisation", None) is not None:
            organisation_id = request.organisation.id
        organisation = get_object_or_404(organisations_visible_to(request.user), id=organisation_id)
        job = services.job_diagnostics_start(
            actor=request.user, organisation=organisation, sleep_seconds=payload.validated_data["sleep_seconds"]
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
