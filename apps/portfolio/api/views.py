"""REST endpoints of the portfolio: the inventory, the risk register (both sources) and direct risks.

Every write is one service call of ``apps.portfolio.services``; objects of other organisations answer 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Organisation, User
from apps.accounts.selectors import organisations_visible_to
from apps.compliance.api.serializers import ProgressSerializer
from apps.core.api.pagination import StandardPagination
from apps.core.errors import ValidationFailed
from apps.portfolio import selectors, services
from apps.portfolio.models import Risk
from apps.portfolio.permissions import visible_to
from apps.usecases.models import UseCase


def _organisation(request: Request) -> Organisation | None:
    """The organisation named by ``?organisation=`` (404 when not visible), else the caller's only one, else None."""
    raw = request.query_params.get("organisation")
    visible = organisations_visible_to(request.user)
    if raw:
        try:
            uuid.UUID(str(raw))
        except ValueError:
            raise ValidationFailed("organisation must be a UUID.", {"organisation": ["not a UUID"]})
        return get_object_or_404(visible, id=raw)
    only = list(visible[:2])
    return only[0] if len(only) == 1 else None


class ThirdPartySummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    supplier = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()


class InventoryRowSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="usecase.id")
    organisation = serializers.UUIDField(source="usecase.organisation_id")
    reference = serializers.CharField(source="usecase.reference")
    title = serializers.CharField(source="usecase.title")
    risk_tier = serializers.CharField(source="usecase.risk_tier")
    annex_iii_area = serializers.CharField(source="usecase.annex_iii_area")
    stage = serializers.CharField(source="usecase.status")
    owner = serializers.CharField(source="usecase.owner.username")
    environments = serializers.ListField(child=serializers.CharField())
    open_alerts = serializers.IntegerField()
    open_conditions = serializers.IntegerField()
    expiring_waivers = serializers.IntegerField()
    third_party_models = ThirdPartySummarySerializer(source="third_party", many=True)
    compliance = ProgressSerializer(many=True)


@extend_schema(tags=["portfolio"])
class InventoryView(generics.GenericAPIView):
    """The inventory of AI systems of the organisations the caller may see (or of ``organisation``)."""

    serializer_class = InventoryRowSerializer
    pagination_class = StandardPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("organisation", str),
            OpenApiParameter("tier", str),
            OpenApiParameter("stage", str),
            OpenApiParameter("kind", str),
            OpenApiParameter("alerts", str),
            OpenApiParameter("q", str),
            OpenApiParameter("sort", str),
            OpenApiParameter("page", int),
        ],
        responses={200: InventoryRowSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = selectors.InventoryFilters.from_params(request.query_params)
        usecases = selectors.inventory(request.user, _organisation(request), filters)
        page = self.paginate_queryset(usecases)
        rows = selectors.inventory_rows(list(page or []))
        return self.get_paginated_response(InventoryRowSerializer(rows, many=True).data)


class RiskSerializer(serializers.ModelSerializer):
    organisation = serializers.UUIDField(source="organisation_id", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    usecase = serializers.UUIDField(source="usecase_id", read_only=True, allow_null=True)
    closed_by = serializers.CharField(source="closed_by.username", read_only=True, allow_null=True, default=None)
    score = serializers.IntegerField(read_only=True)

    class Meta:
        model = Risk
        fields = [
            "id",
            "organisation",
            "reference",
            "title",
            "description",
            "likelihood",
            "severity",
            "score",
            "owner",
            "treatment",
            "treatment_plan",
            "review_on",
            "status",
            "usecase",
            "closed_at",
            "closed_by",
            "closing_note",
            "created_at",
            "updated_at",
        ]


class RiskWriteSerializer(serializers.Serializer):
    organisation = serializers.UUIDField(required=False, help_text="On create; default: the organisation acted in.")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    likelihood = serializers.IntegerField(min_value=1, max_value=5)
    severity = serializers.IntegerField(min_value=1, max_value=5)
    owner = serializers.CharField(required=False, help_text="Username of a member; default: the caller.")
    treatment = serializers.ChoiceField(choices=Risk.Treatment.choices)
    treatment_plan = serializers.CharField(required=False, allow_blank=True)
    review_on = serializers.DateField()
    usecase = serializers.UUIDField(required=False, allow_null=True)


class RiskCloseSerializer(serializers.Serializer):
    note = serializers.CharField()


class RegisterEntrySerializer(serializers.Serializer):
    source = serializers.CharField()
    reference = serializers.CharField()
    title = serializers.CharField()
    likelihood = serializers.IntegerField()
    severity = serializers.IntegerField()
    score = serializers.IntegerField()
    owner = serializers.CharField(source="owner_name")
    treatment = serializers.CharField()
    review_on = serializers.DateField(allow_null=True)
    overdue = serializers.BooleanField()
    status = serializers.CharField()
    usecase = serializers.UUIDField(source="usecase.id", allow_null=True, default=None)
    risk = serializers.UUIDField(source="risk.id", allow_null=True, default=None)


class RegisterSerializer(serializers.Serializer):
    entries = RegisterEntrySerializer(many=True)
    heat_map = serializers.ListField(child=serializers.DictField(), help_text="Open entries by likelihood x severity.")


def _resolve(data: dict[str, Any], organisation: Organisation) -> dict[str, Any]:
    """Usernames and ids of the payload as the objects the service takes; unknown ones are field errors."""
    if "owner" in data:
        owner = User.objects.filter(username=data["owner"], is_active=True).first()
        if owner is None:
            raise ValidationFailed("Unknown owner.", {"owner": ["no active user with that username"]})
        data["owner"] = owner
    if data.get("usecase"):
        usecase = UseCase.objects.filter(id=data["usecase"], organisation=organisation).first()
        if usecase is None:
            raise ValidationFailed("Unknown use case.", {"usecase": ["not a use case of the organisation"]})
        data["usecase"] = usecase
    return data


@extend_schema(tags=["portfolio"])
class RiskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RiskSerializer
    lookup_field = "id"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).select_related("owner", "closed_by").order_by("reference")
        params = self.request.query_params
        if params.get("status") in Risk.Status.values:
            queryset = queryset.filter(status=params["status"])
        if params.get("organisation"):
            try:
                queryset = queryset.filter(organisation_id=uuid.UUID(params["organisation"]))
            except ValueError:
                raise ValidationFailed("organisation must be a UUID.", {"organisation": ["not a UUID"]})
        return queryset

    @extend_schema(parameters=[OpenApiParameter("organisation", str), OpenApiParameter("status", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=RiskWriteSerializer, responses={201: RiskSerializer})
    def create(self, request: Request) -> Response:
        payload = RiskWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        organisation_id = data.pop("organisation", None) or getattr(getattr(request, "organisation", None), "id", None)
        organisation = get_object_or_404(organisations_visible_to(request.user), id=organisation_id)
        risk = services.risk_create(actor=request.user, organisation=organisation, data=_resolve(data, organisation))
        return Response(RiskSerializer(risk).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RiskWriteSerializer, responses={200: RiskSerializer})
    def partial_update(self, request: Request, id: str) -> Response:  # noqa: A002
        risk = self.get_object()
        payload = RiskWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        data.pop("organisation", None)
        risk = services.risk_update(actor=request.user, risk=risk, data=_resolve(data, risk.organisation))
        return Response(RiskSerializer(risk).data)

    @extend_schema(request=RiskCloseSerializer, responses={200: RiskSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, id: str) -> Response:  # noqa: A002
        risk = self.get_object()
        payload = RiskCloseSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        risk = services.risk_close(actor=request.user, risk=risk, note=payload.validated_data["note"])
        return Response(RiskSerializer(risk).data)


RiskViewSet.http_method_names = ["get", "post", "patch", "head", "options"]


@extend_schema(tags=["portfolio"])
class RiskRegisterView(APIView):
    """One organisation's whole register: direct risks and the risks of every DPIA, with the heat map's counts."""

    @extend_schema(
        parameters=[
            OpenApiParameter("organisation", str),
            OpenApiParameter("status", str, description="open (default), closed or all"),
            OpenApiParameter("source", str, description="direct or dpia"),
            OpenApiParameter("overdue", bool),
        ],
        responses={200: RegisterSerializer},
    )
    def get(self, request: Request) -> Response:
        organisation = _organisation(request)
        if organisation is None:
            raise ValidationFailed("Name the organisation: you have access to several.", {"organisation": ["required"]})
        filters = selectors.RegisterFilters.from_params(request.query_params)
        entries = selectors.register_entries(request.user, organisation, filters)
        heat = selectors.heat_map(selectors.register_entries(request.user, organisation))
        cells = [
            {"likelihood": likelihood, "severity": severity, "count": count}
            for (likelihood, severity), count in sorted(heat.cells.items())
        ]
        return Response({"entries": RegisterEntrySerializer(entries, many=True).data, "heat_map": cells})
