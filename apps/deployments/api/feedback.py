"""REST endpoints of feedback on deployments: list, detail, a signed-in member's submission, triage and closing.
The contact an affected person left is shown only to those who triage. Every write is one service call of
``apps.deployments.feedback``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.selectors import organisation_ids_for
from apps.core.errors import ValidationFailed
from apps.deployments import feedback as services
from apps.deployments.api.alerts import is_uuid
from apps.deployments.models import Alert, Feedback
from apps.deployments.permissions import visible_to as deployments_visible_to


class FeedbackSerializer(serializers.ModelSerializer):
    reference = serializers.SerializerMethodField()
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, allow_null=True, default=None)
    alert = serializers.UUIDField(source="alert_id", read_only=True, allow_null=True)
    triaged_by = serializers.CharField(source="triaged_by.username", read_only=True, allow_null=True, default=None)
    contact = serializers.SerializerMethodField()

    class Meta:
        model = Feedback
        fields = [
            "id",
            "reference",
            "deployment",
            "source",
            "kind",
            "body",
            "decision_reference",
            "contact",
            "author",
            "category",
            "severity",
            "status",
            "alert",
            "triaged_by",
            "triaged_at",
            "response",
            "created_at",
        ]

    def get_reference(self, item: Feedback) -> str:
        return services.feedback_reference(item)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_contact(self, item: Feedback) -> str | None:
        """Only those who triage read how to reach the person (``feedback_may(..., "see_contact")``); everyone else
        sees null. Their organisations are looked up once per response, not once per item of a list."""
        if "contact_organisations" not in self.context:
            user = getattr(self.context.get("request"), "user", None)
            self.context["contact_organisations"] = organisation_ids_for(user, services.TRIAGE_ROLES)
        return item.contact if item.organisation_id in self.context["contact_organisations"] else None


class FeedbackSubmitSerializer(serializers.Serializer):
    deployment = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Feedback.Kind.values)
    body = serializers.CharField(max_length=services.BODY_MAX)


class TriageSerializer(serializers.Serializer):
    category = serializers.ChoiceField(
        choices=[c for c in Feedback.Category.values if c != Feedback.Category.UNTRIAGED]
    )
    severity = serializers.ChoiceField(choices=Alert.Severity.values)
    alert = serializers.UUIDField(required=False, allow_null=True)
    response = serializers.CharField(required=False, allow_blank=True, max_length=services.RESPONSE_MAX, default="")


class FeedbackCloseSerializer(serializers.Serializer):
    response = serializers.CharField(required=False, allow_blank=True, max_length=services.RESPONSE_MAX, default="")


@extend_schema(tags=["monitoring"])
class FeedbackViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = FeedbackSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = services.feedback_visible_to(self.request.user)
        params = self.request.query_params
        if params.get("deployment"):
            wanted = params["deployment"]
            queryset = queryset.filter(deployment_id=wanted) if is_uuid(wanted) else queryset.none()
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        return queryset.order_by("-created_at")

    @extend_schema(
        parameters=[
            OpenApiParameter("deployment", OpenApiTypes.UUID),
            OpenApiParameter("status", str, enum=Feedback.Status.values),
            OpenApiParameter("kind", str, enum=Feedback.Kind.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=FeedbackSubmitSerializer, responses={201: FeedbackSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        payload = FeedbackSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        deployment = get_object_or_404(deployments_visible_to(request.user), id=data["deployment"])
        item = services.feedback_submit(actor=request.user, deployment=deployment, kind=data["kind"], body=data["body"])
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TriageSerializer, responses={200: FeedbackSerializer})
    @action(detail=True, methods=["post"])
    def triage(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = TriageSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        alert = None
        if data.get("alert"):
            alert = Alert.objects.filter(id=data["alert"], organisation_id=item.organisation_id).first()
            if alert is None:
                raise ValidationFailed("Link the feedback to an alert of its deployment.", {"alert": ["unknown"]})
        item = services.feedback_triage(
            actor=request.user,
            feedback=item,
            category=data["category"],
            severity=data["severity"],
            alert=alert,
            response=data.get("response", ""),
        )
        return Response(self.get_serializer(item).data)

    @extend_schema(request=FeedbackCloseSerializer, responses={200: FeedbackSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        payload = FeedbackCloseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.feedback_close(
            actor=request.user, feedback=self.get_object(), response=payload.validated_data.get("response", "")
        )
        return Response(self.get_serializer(item).data)
