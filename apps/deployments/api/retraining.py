"""REST endpoints of retraining requests: list, detail (with the pre-filled training run), open, launch and close.
Every write is one service call of ``apps.deployments.retraining``."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.deployments import retraining as services
from apps.deployments.api.alerts import is_uuid
from apps.deployments.models import Alert, Feedback, RetrainingRequest
from apps.deployments.permissions import visible_to as deployments_visible_to

PREFILL_SCHEMA = {
    "type": "object",
    "properties": {
        "dataset_version": {"type": "string", "format": "uuid", "nullable": True},
        "spec": {"type": "object", "additionalProperties": True},
    },
    "required": ["dataset_version", "spec"],
}


class RetrainingRequestSerializer(serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True)
    alert = serializers.UUIDField(source="alert_id", read_only=True, allow_null=True)
    feedback = serializers.UUIDField(source="feedback_id", read_only=True, allow_null=True)
    opened_by = serializers.CharField(source="opened_by.username", read_only=True)
    dataset_version = serializers.UUIDField(source="dataset_version_id", read_only=True, allow_null=True)
    training_run = serializers.UUIDField(source="training_run_id", read_only=True, allow_null=True)
    review = serializers.UUIDField(source="review_id", read_only=True, allow_null=True)
    prefill = serializers.SerializerMethodField()

    class Meta:
        model = RetrainingRequest
        fields = [
            "id",
            "deployment",
            "usecase",
            "reason",
            "alert",
            "feedback",
            "status",
            "opened_by",
            "dataset_version",
            "training_run",
            "review",
            "closed_reason",
            "prefill",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(PREFILL_SCHEMA)
    def get_prefill(self, item: RetrainingRequest) -> dict[str, Any]:
        prefill = services.retraining_prefill(item)
        version = prefill["dataset_version"]
        return {"dataset_version": str(version.id) if version else None, "spec": prefill["spec"]}


class RetrainingOpenSerializer(serializers.Serializer):
    deployment = serializers.UUIDField()
    reason = serializers.CharField(max_length=services.REASON_MAX)
    alert = serializers.UUIDField(required=False, allow_null=True)
    feedback = serializers.UUIDField(required=False, allow_null=True)


class RetrainingLaunchSerializer(serializers.Serializer):
    spec_overrides = serializers.DictField(
        required=False, default=dict, help_text=f"Changes to the deployed run's spec: {', '.join(services.SPEC_KEYS)}."
    )


class RetrainingCloseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=services.CLOSE_REASON_MAX)


@extend_schema(tags=["monitoring"])
class RetrainingRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = RetrainingRequestSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = services.retraining_visible_to(self.request.user).select_related(
            "deployment__usecase", "deployment__model_version__training_run"
        )
        params = self.request.query_params
        if params.get("deployment"):
            wanted = params["deployment"]
            queryset = queryset.filter(deployment_id=wanted) if is_uuid(wanted) else queryset.none()
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset.order_by("-created_at")

    @extend_schema(
        parameters=[
            OpenApiParameter("deployment", OpenApiTypes.UUID),
            OpenApiParameter("status", str, enum=RetrainingRequest.Status.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=RetrainingOpenSerializer, responses={201: RetrainingRequestSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        payload = RetrainingOpenSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        deployment = get_object_or_404(deployments_visible_to(request.user), id=data["deployment"])
        alert = feedback = None
        if data.get("alert"):
            alert = Alert.objects.filter(id=data["alert"], deployment=deployment).first()
            if alert is None:
                raise ValidationFailed("Name an alert of this deployment.", {"alert": ["unknown"]})
        if data.get("feedback"):
            feedback = Feedback.objects.filter(id=data["feedback"], deployment=deployment).first()
            if feedback is None:
                raise ValidationFailed("Name feedback on this deployment.", {"feedback": ["unknown"]})
        item = services.retraining_request_open(
            actor=request.user, deployment=deployment, reason=data["reason"], alert=alert, feedback=feedback
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RetrainingLaunchSerializer, responses={202: RetrainingRequestSerializer})
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = RetrainingLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.retraining_request_launch(
            actor=request.user, request=item, spec_overrides=payload.validated_data.get("spec_overrides") or None
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RetrainingCloseSerializer, responses={200: RetrainingRequestSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        payload = RetrainingCloseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.retraining_request_close(
            actor=request.user, request=self.get_object(), reason=payload.validated_data["reason"]
        )
        return Response(self.get_serializer(item).data)
