"""REST endpoints of alerts (list, detail, acknowledge, assign, comments, resolve) and of the organisation's alert
webhook (org admins). Every write is one service call of ``apps.deployments.alerts``."""

from __future__ import annotations

import uuid

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Role
from apps.accounts.selectors import organisation_members, organisations_visible_to, roles_in
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.deployments import alerts as services
from apps.deployments.models import Alert, AlertComment, AlertWebhook


class AlertSerializer(serializers.ModelSerializer):
    deployment = serializers.UUIDField(source="deployment_id", read_only=True)
    window = serializers.UUIDField(source="window_id", read_only=True, allow_null=True)
    assignee = serializers.CharField(source="assignee.username", read_only=True, allow_null=True, default=None)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", read_only=True, allow_null=True, default=None
    )
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "deployment",
            "monitor",
            "family",
            "severity",
            "status",
            "title",
            "detail",
            "window",
            "occurrences",
            "assignee",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "resolution",
            "escalated_at",
            "last_notified_at",
            "created_at",
            "updated_at",
        ]


class AlertCommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = AlertComment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="A member's username (or id); empty to unassign."
    )


class ResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(max_length=services.RESOLUTION_MAX)


@extend_schema(tags=["monitoring"])
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AlertSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = services.alerts_visible_to(self.request.user).select_related("acknowledged_by", "resolved_by")
        params = self.request.query_params
        if params.get("deployment"):
            wanted = params["deployment"]
            queryset = queryset.filter(deployment_id=wanted) if is_uuid(wanted) else queryset.none()
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if params.get("severity"):
            queryset = queryset.filter(severity=params["severity"])
        return queryset.order_by("-created_at")

    @extend_schema(
        parameters=[
            OpenApiParameter("deployment", OpenApiTypes.UUID),
            OpenApiParameter("status", str, enum=Alert.Status.values),
            OpenApiParameter("severity", str, enum=Alert.Severity.values),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str) -> Response:
        alert = services.alert_acknowledge(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=AssignSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        alert = self.get_object()
        payload = AssignSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        wanted = (payload.validated_data.get("assignee") or "").strip()
        assignee = None
        if wanted:
            members = organisation_members(alert.organisation)
            by_id = Q(id=wanted) if is_uuid(wanted) else Q(pk__in=[])
            assignee = members.filter(Q(username=wanted) | by_id).first()
            if assignee is None:
                raise ValidationFailed("Assign the alert to a member of its organisation.", {"assignee": ["unknown"]})
        alert = services.alert_assign(actor=request.user, alert=alert, assignee=assignee)
        return Response(AlertSerializer(alert).data)

    @extend_schema(methods=["GET"], responses={200: AlertCommentSerializer(many=True)})
    @extend_schema(methods=["POST"], request=AlertCommentSerializer, responses={201: AlertCommentSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # GET answers a plain array, unpaginated
    def comments(self, request: Request, pk: str) -> Response:
        alert = self.get_object()
        if request.method == "GET":
            return Response(AlertCommentSerializer(alert.comments.select_related("author"), many=True).data)
        payload = AlertCommentSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        comment = services.alert_comment(actor=request.user, alert=alert, body=payload.validated_data["body"])
        return Response(AlertCommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResolveSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        payload = ResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        alert = services.alert_resolve(
            actor=request.user, alert=self.get_object(), resolution=payload.validated_data["resolution"]
        )
        return Response(AlertSerializer(alert).data)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AlertWebhookSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)

    class Meta:
        model = AlertWebhook
        fields = ["organisation", "url", "active", "last_delivery_at", "last_delivery_status", "created_at"]
        read_only_fields = ["organisation", "active", "last_delivery_at", "last_delivery_status", "created_at"]


class AlertWebhookSetSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="https only; private and loopback addresses are refused.")


class AlertWebhookSecretSerializer(AlertWebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret, shown this once.")

    class Meta(AlertWebhookSerializer.Meta):
        fields = AlertWebhookSerializer.Meta.fields + ["secret"]


@extend_schema(
    tags=["monitoring"], parameters=[OpenApiParameter("organisation", OpenApiTypes.UUID, OpenApiParameter.PATH)]
)
class AlertWebhookViewSet(viewsets.GenericViewSet):
    """The organisation's alert webhook, addressed by the organisation's id (org admins only)."""

    serializer_class = AlertWebhookSerializer
    lookup_url_kwarg = "organisation"

    def _organisation(self, organisation: str):  # type: ignore[no-untyped-def]
        found = get_object_or_404(organisations_visible_to(self.request.user), id=organisation)
        if Role.ADMIN not in roles_in(self.request.user, found):
            raise PermissionDenied("Only org admins see and set the alert webhook.")
        return found

    @extend_schema(responses={200: AlertWebhookSerializer})
    def retrieve(self, request: Request, organisation: str) -> Response:
        webhook = AlertWebhook.objects.filter(organisation=self._organisation(organisation)).first()
        if webhook is None:
            raise NotFound("No alert webhook is set.")
        return Response(AlertWebhookSerializer(webhook).data)

    @extend_schema(request=AlertWebhookSetSerializer, responses={200: AlertWebhookSecretSerializer})
    def update(self, request: Request, organisation: str) -> Response:
        found = self._organisation(organisation)
        payload = AlertWebhookSetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        webhook, secret = services.alert_webhook_set(
            actor=request.user, organisation=found, url=payload.validated_data["url"]
        )
        return Response({**AlertWebhookSerializer(webhook).data, "secret": secret})

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, organisation: str) -> Response:
        services.alert_webhook_remove(actor=request.user, organisation=self._organisation(organisation))
        return Response(status=status.HTTP_204_NO_CONTENT)
