"""REST endpoints for private training (used from CI pipelines), model versions and budgets. Scoring is per deployment
(``/api/v1/deployments/{id}/score/``)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import AttestError, NotFound
from apps.datasets.models import DatasetVersion
from apps.datasets.permissions import visible_to as datasets_visible_to
from apps.jobs.services import job_cancel
from apps.training import services
from apps.training.api.serializers import (
    ModelVersionSerializer,
    PrivacyBudgetSerializer,
    TrainingRunCreateSerializer,
    TrainingRunSerializer,
)
from apps.training.models import PrivacyBudget
from apps.training.permissions import models_visible_to, visible_to


@extend_schema(tags=["training"])
class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainingRunSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return visible_to(self.request.user).select_related("job").order_by("-created_at")

    @extend_schema(request=TrainingRunCreateSerializer, responses={202: TrainingRunSerializer})
    def create(self, request: Request) -> Response:
        payload = TrainingRunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        version = get_object_or_404(
            datasets_visible_to(request.user, "view", DatasetVersion), id=data.pop("dataset_version")
        )
        non_private = data.pop("non_private")
        run = services.training_run_request(actor=request.user, version=version, spec=data, non_private=non_private)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        if run.job is None:
            raise AttestError("invalid_state", "This run has no job to cancel.")
        job_cancel(actor=request.user, job=run.job)
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data)


@extend_schema(tags=["training"])
class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    parser_classes = [JSONParser, MultiPartParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return models_visible_to(self.request.user).order_by("-created_at")


@extend_schema(tags=["training"])
class PrivacyBudgetViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A dataset's privacy budget and ledger, looked up by the dataset's id."""

    serializer_class = PrivacyBudgetSerializer
    queryset = PrivacyBudget.objects.none()  # the real lookup is in get_object, scoped by dataset visibility
    lookup_field = "dataset"
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    @extend_schema(parameters=[OpenApiParameter("dataset", OpenApiTypes.UUID, OpenApiParameter.PATH)])
    def retrieve(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().retrieve(request, *args, **kwargs)

    def get_object(self):  # type: ignore[no-untyped-def]
        dataset = get_object_or_404(datasets_visible_to(self.request.user), id=self.kwargs["dataset"])
        budget = PrivacyBudget.objects.filter(dataset=dataset).prefetch_related("entries").first()
        if budget is None:
            raise NotFound("No run has used this dataset's privacy budget yet.")
        return budget
