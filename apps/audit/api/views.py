"""REST endpoints of the audit trail: events (filter, export), the chain head, verification."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
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
from apps.audit.selectors import READ_ROLES, audit_events_filtered, audit_events_visible_to
from apps.audit.services import audit_head_publish
from apps.audit.verify import audit_chain_verify
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.core.exports import csv_stream, json_array_stream

ORGANISATION_PARAMETER = OpenApiParameter(
    "organisation",
    OpenApiTypes.UUID,
    description="Whose chain (each organisation has its own); needed only by people who read several organisations.",
)


def chain_organisation(request: Request, roles: Any = None) -> Any:
    """The organisation whose chain the request is about: ``?organisation=`` (one the user may read with ``roles``),
    else the only one the user reads; a superuser without organisations gets the platform chain (None)."""
    readable = organisation_ids_for(request.user, roles)
    raw = request.query_params.get("organisation")
    if raw:
        try:
            wanted = uuid.UUID(raw)
        except ValueError:
            raise ValidationFailed("The organisation is not a valid id.", {"organisation": ["Not a UUID."]}) from None
        if wanted not in readable:
            raise NotFound()
        return wanted
    if len(readable) == 1:
        return next(iter(readable))
    if not readable:
        if request.user.is_superuser:
            return None
        raise PermissionDenied("Only org admins and auditors verify an audit chain.")
    raise ValidationFailed(
        "Each organisation has its own chain: name one.", {"organisation": ["Required: you read several."]}
    )


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
    # An event is addressed by its hash: sequence numbers count within each organisation's chain, so they are not
    # unique, and a global counter would reveal other organisations' activity.
    lookup_field = "hash"
    lookup_value_regex = r"[0-9a-f]{64}"

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
        # Streamed whole, never paginated: CSV, or a plain JSON array of events (no count, no next/previous).
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): OpenApiResponse(
                AuditEventSerializer(many=True), description="A JSON array of every matching event."
            ),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request: Request) -> StreamingHttpResponse:
        filters = self._filters(AuditExportFilterSerializer)
        export_format = filters.pop("format")
        # One chain's export reads in sequence order; several organisations' exports interleave in writing order.
        order = ("organisation_id", "sequence") if filters.get("organisation") else ("id",)
        events = audit_events_filtered(self.get_queryset(), **filters).order_by(*order).iterator(chunk_size=2000)
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


@extend_schema(tags=["audit"], parameters=[ORGANISATION_PARAMETER], responses={200: AuditHeadSerializer})
class AuditHeadView(APIView):
    """One organisation's chain head, to publish outside the database (an older published head exposes a rewrite).

    Any member of the organisation (or auditor with a grant) may read it; it counts only that organisation's events.
    Handing it out records it as published: from then on verification fails unless the chain still holds it.
    """

    def get(self, request: Request) -> Response:
        head = audit_head_publish(organisation=chain_organisation(request), source="api")
        return Response(AuditHeadSerializer(head).data)


@extend_schema(
    tags=["audit"], parameters=[ORGANISATION_PARAMETER], request=None, responses={200: ChainVerificationSerializer}
)
class AuditVerifyView(APIView):
    """Walk one organisation's chain now (its org admins and auditors)."""

    def post(self, request: Request) -> Response:
        organisation = chain_organisation(request, READ_ROLES)
        return Response(audit_chain_verify(organisation=organisation).as_dict())
