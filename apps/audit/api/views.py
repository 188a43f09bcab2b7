"""REST endpoints of the audit trail: events (filter, export), the chain head, verification."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import organisation_ids_for
from apps.audit.api.serializers import (
    AuditEventSerializer,
    AuditExportFilterSerializer,
    AuditFilterSerializer,
    AuditHeadSerializer,
    ChainVerificationSerializer,
)
from apps.audit.chain import GENESIS_HASH
from apps.audit.models import AuditChainHead
from apps.audit.selectors import READ_ROLES, audit_events_filtered, audit_events_visible_to
from apps.audit.verify import audit_chain_verify
from apps.core.errors import PermissionDenied
from apps.core.exports import csv_stream, json_array_stream

EXPORT_COLUMNS = [
    "sequence",
    "created_at",
    "organisation",
    "actor",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "prev_hash",
    "hash",
]


@extend_schema(tags=["audit"])
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEventSerializer
    lookup_field = "sequence"
    lookup_value_regex = r"\d+"

    def _filters(self, serializer_class: type = AuditFilterSerializer) -> dict:
        filters = serializer_class(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return dict(filters.validated_data)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return audit_events_visible_to(self.request.user)

    @extend_schema(parameters=[AuditFilterSerializer])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        queryset = audit_events_filtered(self.get_queryset(), **self._filters())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)

    @extend_schema(
        parameters=[AuditExportFilterSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): AuditEventSerializer(many=True)},
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> StreamingHttpResponse:
        filters = self._filters(AuditExportFilterSerializer)
        export_format = filters.pop("format")
        events = audit_events_filtered(self.get_queryset(), **filters).order_by("sequence").iterator(chunk_size=2000)
        if export_format == "json":
            body = json_array_stream(AuditEventSerializer(event).data for event in events)
            response = StreamingHttpResponse(body, content_type="application/json")
        else:
            rows = (
                [
                    event.sequence,
                    event.created_at.isoformat(),
                    event.organisation_id,
                    event.actor_label,
                    event.request_id,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.before,
                    event.after,
                    event.prev_hash,
                    event.hash,
                ]
                for event in events
            )
            response = StreamingHttpResponse(csv_stream(EXPORT_COLUMNS, rows), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="audit-trail.{export_format}"'
        return response


@extend_schema(tags=["audit"], responses={200: AuditHeadSerializer})
class AuditHeadView(APIView):
    """The current chain head, to publish outside the database (an older published head exposes a rewrite)."""

    def get(self, request: Request) -> Response:
        head = AuditChainHead.objects.first()
        return Response({"sequence": head.sequence if head else 0, "hash": head.hash if head else GENESIS_HASH})


@extend_schema(tags=["audit"], request=None, responses={200: ChainVerificationSerializer})
class AuditVerifyView(APIView):
    """Walk the whole chain now (org admins and auditors)."""

    def post(self, request: Request) -> Response:
        if not organisation_ids_for(request.user, READ_ROLES) and not request.user.is_superuser:
            raise PermissionDenied("Only org admins and auditors verify the audit chain.")
        return Response(audit_chain_verify().as_dict())
