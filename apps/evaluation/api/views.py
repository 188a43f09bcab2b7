"""REST endpoints for evaluations."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from apps.datasets.models import DatasetVersion
from apps.datasets.permissions import visible_to as datasets_visible_to
from apps.evaluation import services
from apps.evaluation.api.serializers import EvaluationRequestSerializer, EvaluationSerializer
from apps.evaluation.permissions import visible_to
from apps.training.permissions import models_visible_to


@extend_schema(tags=["evaluation"])
class EvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EvaluationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user).select_related("job").order_by("-created_at")

    @extend_schema(request=EvaluationRequestSerializer, responses={202: EvaluationSerializer})
    def create(self, request: Request) -> Response:
        payload = EvaluationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = get_object_or_404(models_visible_to(request.user), id=payload.validated_data["model_version"])
        version = None
        if payload.validated_data["dataset_version"]:
            version = get_object_or_404(
                datasets_visible_to(request.user, "view", DatasetVersion), id=payload.validated_data["dataset_version"]
            )
        item = services.evaluation_request(
            actor=request.user, model_version=model, dataset_version=version, seed=payload.validated_data["seed"]
        )
        return Response(EvaluationSerializer(item).data, status=status.HTTP_202_ACCEPTED)
