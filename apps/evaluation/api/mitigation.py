"""REST endpoints of the model page: mitigated candidates (with their budget preview) and explanations of held-out
rows. Thin: parse, scope the model to what the user may see (another organisation's answers 404), call a service."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.evaluation import mitigation as services
from apps.evaluation.selectors import row_explanations_visible_to
from apps.jobs.models import Job
from apps.training.api.serializers import TrainingRunSerializer
from apps.training.permissions import models_visible_to


class MitigationRequestSerializer(serializers.Serializer):
    model_version = serializers.UUIDField(help_text="The original model version to mitigate.")
    method = serializers.ChoiceField(choices=list(services.METHODS))
    constraint = serializers.ChoiceField(
        choices=list(services.CONSTRAINTS),
        required=False,
        allow_null=True,
        default=None,
        help_text="Default: the constraint of the policy's main disparity metric.",
    )
    attribute = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="Default: the policy's first sensitive attribute."
    )
    max_calls = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Reductions: the most learner calls (each a DP-SGD training that spends budget).",
    )
    epsilon_per_call = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="Reductions: the epsilon each learner call targets."
    )


class MitigationLaunchSerializer(MitigationRequestSerializer):
    confirm_epsilon = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Reductions: repeat the composed epsilon the preview showed; refused (409) otherwise.",
    )


class MitigationPlanSerializer(serializers.Serializer):
    method = serializers.CharField()
    constraint = serializers.CharField()
    attribute = serializers.CharField()
    model_version = serializers.UUIDField()
    validation_rows = serializers.IntegerField()
    epsilon = serializers.FloatField(help_text="What this mitigation spends: every learner call composed (PLD).")
    fits = serializers.BooleanField(help_text="Whether the dataset's remaining budget covers it.")
    note = serializers.CharField()
    budget = serializers.DictField(help_text="cap, spent, reserved, remaining")
    max_calls = serializers.IntegerField(required=False)
    epsilon_per_call = serializers.FloatField(required=False, help_text="Reductions: each call's target epsilon.")
    training_rows = serializers.IntegerField(required=False, help_text="Reductions: the rows each call trains on.")
    delta = serializers.FloatField(required=False)
    accountant = serializers.CharField(required=False)
    calls = serializers.IntegerField(required=False, help_text="Reductions: the most learner calls it makes.")
    per_call = serializers.DictField(required=False, help_text="Reductions: each call's DP-SGD mechanism.")
    dataset_composed_after = serializers.FloatField(
        required=False, help_text="Reductions: the dataset's composed spend if every call is committed."
    )


def _model(request: Request, model_id: Any) -> Any:
    return get_object_or_404(models_visible_to(request.user).select_related("training_run"), id=model_id)


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("method", "constraint", "attribute", "max_calls", "epsilon_per_call")}


@extend_schema(tags=["evaluation"])
class MitigationViewSet(viewsets.ViewSet):
    """Mitigated candidates: each request makes a new model version (its run is returned) evaluated like any."""

    @extend_schema(request=MitigationLaunchSerializer, responses={202: TrainingRunSerializer})
    def create(self, request: Request) -> Response:
        payload = MitigationLaunchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        run = services.mitigation_request(
            actor=request.user,
            model_version=_model(request, data["model_version"]),
            confirm_epsilon=data["confirm_epsilon"],
            **_settings(data),
        )
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=MitigationRequestSerializer, responses={200: MitigationPlanSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """What the mitigation would use and spend (the composed epsilon of a reduction), before it is launched."""
        payload = MitigationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        plan = services.mitigation_plan(
            actor=request.user, model_version=_model(request, data["model_version"]), **_settings(data)
        )
        return Response(MitigationPlanSerializer(plan).data)


class RowExplanationRequestSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    position = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="1..n; omit for a random held-out row."
    )


class RowExplanationSerializer(serializers.ModelSerializer):
    """The job that explains one held-out row, and its result once it has finished."""

    model_version = serializers.CharField(source="target_id", read_only=True)
    position = serializers.SerializerMethodField()
    explanation = serializers.JSONField(
        source="result",
        read_only=True,
        allow_null=True,
        help_text="prediction, baseline_probability, logit, baseline_logit, contributions, reasons, decision",
    )
    error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "model_version", "position", "status", "progress", "explanation", "error", "created_at"]

    def get_position(self, job: Job) -> int | None:
        return (job.spec or {}).get("position")

    def get_error(self, job: Job) -> str:
        return ((job.error or {}).get("message") or "") if job.status in ("failed", "cancelled") else ""


@extend_schema(tags=["evaluation"])
class RowExplanationViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RowExplanationSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return row_explanations_visible_to(self.request.user)

    @extend_schema(request=RowExplanationRequestSerializer, responses={202: RowExplanationSerializer})
    def create(self, request: Request) -> Response:
        payload = RowExplanationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        job = services.row_explanation_request(
            actor=request.user,
            model_version=_model(request, payload.validated_data["model_version"]),
            position=payload.validated_data["position"],
        )
        return Response(RowExplanationSerializer(job).data, status=status.HTTP_202_ACCEPTED)
