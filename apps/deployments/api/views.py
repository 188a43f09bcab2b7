"""REST endpoints of deployments and post-market monitoring.

Deployments, their batches, labels, windows and scoring tokens are read by every role of the organisation and
changed by its owners and admins (``apps.deployments.permissions``). Scoring is different: it is called by the
system the model runs in, with one of the deployment's scoring tokens and nothing else
(``apps.deployments.authentication``), throttled per deployment.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.core.errors import AttestError, ValidationFailed
from apps.core.uploads import accepts_upload
from apps.datasets.uploads import EncryptingUploadHandler
from apps.deployments import services
from apps.deployments.api.parsers import BoundedJSONParser, CSVTextParser, EncryptingCSVParser, encrypted_batch
from apps.deployments.api.serializers import (
    BatchRowsSerializer,
    DeploymentCreateSerializer,
    DeploymentSerializer,
    EndReasonSerializer,
    LabelsSerializer,
    MonitoringWindowDetailSerializer,
    MonitoringWindowSerializer,
    ProductionBatchSerializer,
    ScoreAcceptedSerializer,
    ScoreRequestSerializer,
    ScoringTokenCreateSerializer,
    ScoringTokenSecretSerializer,
    ScoringTokenSerializer,
)
from apps.deployments.authentication import HasScoringToken, ScoringRateThrottle, ScoringTokenAuthentication
from apps.deployments.models import Deployment, MonitoringWindow, ProductionBatch, ScoringToken
from apps.deployments.permissions import can, visible_to
from apps.jobs.api.serializers import JobWithResultSerializer
from apps.training.permissions import models_visible_to


def _may_post_batch(user: Any, request: Any, kwargs: dict[str, Any]) -> None:
    """Checked before the body is read, as the action would: an unseen deployment 404, seen but not ours 403."""
    try:
        deployment = visible_to(user).filter(id=kwargs["pk"]).first()
    except DjangoValidationError:
        raise Http404 from None
    if deployment is None:
        raise Http404
    if not can(user, "act", deployment.organisation):
        raise DjangoPermissionDenied


def batch_upload_limit() -> int:
    return settings.BATCH_MAX_BYTES


def _rows_to_csv(rows: Any) -> str:
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise ValidationFailed("Send rows as a list of objects, one per row.", {"rows": ["a non-empty list"]})
    buffer = io.StringIO()
    pd.DataFrame.from_records(rows).to_csv(buffer, index=False)
    return buffer.getvalue()


def _paginated(view: Any, queryset: Any, serializer: Any) -> Response:
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer(page, many=True).data)


@extend_schema(tags=["deployments"])
class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeploymentSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).select_related("owner").order_by("-created_at")
        params = self.request.query_params
        for name in ("usecase", "model_version"):
            if params.get(name):
                try:
                    queryset = queryset.filter(**{f"{name}_id": params[name]})
                except DjangoValidationError:
                    return queryset.none()
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset

    def get_parsers(self):  # type: ignore[no-untyped-def]
        # Called before ``self.action`` is set: the action comes from the method's route.
        method = (getattr(self.request, "method", "") or "").lower()
        action = getattr(self, "action", None) or getattr(self, "action_map", {}).get(method)
        if action == "batches":
            return [BoundedJSONParser(), EncryptingCSVParser(), MultiPartParser()]
        return [BoundedJSONParser()]

    @extend_schema(
        parameters=[
            OpenApiParameter("usecase", OpenApiTypes.UUID),
            OpenApiParameter("model_version", OpenApiTypes.UUID),
            OpenApiParameter("status", str, enum=Deployment.Status.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=DeploymentCreateSerializer, responses={201: DeploymentSerializer})
    def create(self, request: Request) -> Response:
        payload = DeploymentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        model = get_object_or_404(models_visible_to(request.user), id=data["model_version"])
        owner = request.user
        if data.get("owner"):
            owner = User.objects.filter(username=data["owner"]).first()
        deployment = services.deployment_register(
            actor=request.user,
            model_version=model,
            environment=data["environment"],
            system=data["system"],
            owner=owner,
            deployed_on=data.get("deployed_on") or timezone.localdate(),
        )
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndReasonSerializer, responses={200: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        """Put the version this deployment replaced back into service; answers the reactivated deployment."""
        payload = EndReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reactivated = services.deployment_rollback(
            actor=request.user, deployment=self.get_object(), reason=payload.validated_data["reason"]
        )
        return Response(DeploymentSerializer(reactivated).data)

    @extend_schema(request=EndReasonSerializer, responses={200: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        payload = EndReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        deployment = services.deployment_withdraw(
            actor=request.user, deployment=self.get_object(), reason=payload.validated_data["reason"]
        )
        return Response(DeploymentSerializer(deployment).data)

    @extend_schema(methods=["GET"], responses={200: ProductionBatchSerializer(many=True)})
    @extend_schema(
        methods=["POST"],
        request={
            "application/json": BatchRowsSerializer,
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
        },
        responses={202: ProductionBatchSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    @accepts_upload(
        handler=EncryptingUploadHandler,
        max_file_bytes=batch_upload_limit,
        fields=("file",),
        allowed=_may_post_batch,
    )
    def batches(self, request: Request, pk: str) -> Response:
        """Production data: the model's features, its prediction and the prediction's id per row, optionally the
        sensitive attributes and the label. A batch whose columns do not fit is refused with the columns at fault
        and nothing is kept; otherwise it is folded into its window by a job."""
        deployment = self.get_object()
        if request.method == "GET":
            return _paginated(
                self, deployment.batches.select_related("job").order_by("-received_at"), ProductionBatchSerializer
            )
        upload = request.FILES.get("file") if request.content_type.startswith("multipart/") else None
        if upload is not None:
            if not hasattr(upload, "incoming"):
                raise ValidationFailed("Attach the batch as the multipart field 'file'.", {"file": ["required"]})
            incoming, sha256 = upload.incoming, upload.sha256
        elif isinstance(request.data, dict) and "incoming" in request.data:
            incoming, sha256 = request.data["incoming"], request.data["sha256"]
        elif request.content_type.startswith("application/json"):
            incoming, sha256 = encrypted_batch(request, [_rows_to_csv(request.data.get("rows")).encode("utf-8")])
        else:
            raise ValidationFailed("Send the batch as CSV (text/csv), JSON rows, or a multipart 'file'.")
        batch = services.production_batch_post(
            actor=request.user, deployment=deployment, incoming=incoming, sha256=sha256
        )
        return Response(ProductionBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=LabelsSerializer, responses={200: ProductionBatchSerializer})
    @action(detail=True, methods=["post"])
    def labels(self, request: Request, pk: str) -> Response:
        """Late ground truth by prediction id; the answer counts the ids matched and those that match nothing."""
        deployment = self.get_object()
        payload = LabelsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        batch = services.labels_record(
            actor=request.user, deployment=deployment, labels=[dict(item) for item in payload.validated_data["labels"]]
        )
        return Response(ProductionBatchSerializer(batch).data)


@extend_schema(tags=["deployments"])
class ScoringTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Scoring tokens of the deployments one may see (never their secrets, shown once at creation)."""

    serializer_class = ScoringTokenSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = ScoringToken.objects.filter(
            deployment__in=visible_to(self.request.user).values("id")
        ).select_related("created_by", "deployment__organisation")
        deployment = self.request.query_params.get("deployment")
        if deployment:
            try:
                queryset = queryset.filter(deployment_id=deployment)
            except DjangoValidationError:
                return queryset.none()
        return queryset.order_by("-created_at")

    @extend_schema(parameters=[OpenApiParameter("deployment", OpenApiTypes.UUID)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ScoringTokenCreateSerializer, responses={201: ScoringTokenSecretSerializer})
    def create(self, request: Request) -> Response:
        payload = ScoringTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        deployment = get_object_or_404(visible_to(request.user), id=payload.validated_data["deployment"])
        token, secret = services.scoring_token_create(
            actor=request.user, deployment=deployment, name=payload.validated_data["name"]
        )
        token.secret = secret  # type: ignore[attr-defined]
        return Response(ScoringTokenSecretSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ScoringTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        token = services.scoring_token_revoke(actor=request.user, token=self.get_object())
        return Response(ScoringTokenSerializer(token).data)


@extend_schema(tags=["deployments"])
class MonitoringWindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Monitoring windows (a day or a week), with each monitor's result once evaluated."""

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return MonitoringWindowDetailSerializer if self.action == "retrieve" else MonitoringWindowSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user, model=MonitoringWindow).select_related("job")
        deployment = self.request.query_params.get("deployment")
        if deployment:
            try:
                queryset = queryset.filter(deployment_id=deployment)
            except DjangoValidationError:
                return queryset.none()
        return queryset.order_by("deployment_id", "-starts_at")

    @extend_schema(parameters=[OpenApiParameter("deployment", OpenApiTypes.UUID)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)


class _ScoringView(APIView):
    authentication_classes = [ScoringTokenAuthentication]
    permission_classes = [HasScoringToken]
    throttle_classes = [ScoringRateThrottle]

    def deployment(self, request: Request) -> Deployment:
        # The token opened this deployment (ScoringTokenAuthentication checks the URL's id against the token's).
        return Deployment.objects.select_related("organisation", "model_version").get(pk=request.auth.deployment_id)


@extend_schema(tags=["deployments"])
class ScoreView(_ScoringView):
    """Score rows with the deployment's model, on a worker: answers 202 with the address to poll."""

    parser_classes = [BoundedJSONParser, CSVTextParser, MultiPartParser]

    @extend_schema(
        request={
            "application/json": ScoreRequestSerializer,
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
        },
        parameters=[
            OpenApiParameter(
                "reasons", int, description=f"Return the top k reasons per row (1 to {services.MAX_REASONS})."
            )
        ],
        responses={202: ScoreAcceptedSerializer},
    )
    def post(self, request: Request, pk: Any) -> Response:
        deployment = self.deployment(request)
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise ValidationFailed("Attach the rows as the multipart field 'file'.", {"file": ["required"]})
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise AttestError("invalid", "The CSV must be UTF-8 text.") from None
        elif isinstance(request.data, dict) and "csv" in request.data and request.content_type.startswith("text/"):
            text = request.data["csv"]
        else:
            rows = request.data.get("rows") if isinstance(request.data, dict) else request.data
            text = _rows_to_csv(rows)
        try:
            reasons = int(request.query_params.get("reasons") or 0)
        except ValueError:
            raise ValidationFailed("reasons is a whole number.", {"reasons": ["a whole number"]}) from None
        batch = services.deployment_score_request(
            token=request.auth, deployment=deployment, csv_text=text, reasons=reasons
        )
        poll = reverse("api:deployment-score-result", kwargs={"pk": deployment.id, "job": batch.job_id})
        body = {"batch": batch.id, "job": batch.job_id, "status": batch.job.status, "poll": poll}
        return Response(ScoreAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["deployments"])
class ScoreResultView(_ScoringView):
    """A scoring job of this deployment: its status, and once it succeeded the predictions (kept for a few days)."""

    @extend_schema(responses={200: JobWithResultSerializer})
    def get(self, request: Request, pk: Any, job: Any) -> Response:
        batch = (
            ProductionBatch.objects.select_related("job")
            .filter(deployment_id=request.auth.deployment_id, source=ProductionBatch.Source.SCORING, job_id=job)
            .first()
        )
        if batch is None or batch.job is None:
            raise AttestError("not_found", "No scoring job of this deployment has that id.")
        return Response(JobWithResultSerializer(batch.job).data)
