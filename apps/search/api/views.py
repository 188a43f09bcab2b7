"""GET /api/v1/search/: the same search as the page, as JSON."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import visible_to as organisations_visible_to
from apps.core.errors import ValidationFailed
from apps.deployments.api.alerts import is_uuid
from apps.search.selectors import DEFAULT_LIMIT, KIND_CHOICES, KIND_KEYS, MAX_QUERY, MIN_QUERY, search


class SearchResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    id = serializers.CharField()
    title = serializers.CharField()
    subtitle = serializers.CharField()
    url = serializers.CharField(help_text="The page of the result in the portal.")
    rank = serializers.FloatField()


class SearchGroupSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    label = serializers.CharField()
    results = SearchResultSerializer(many=True)
    more = serializers.BooleanField(help_text="More results of this kind than the limit.")


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    groups = SearchGroupSerializer(many=True)


class SearchView(APIView):
    @extend_schema(
        tags=["search"],
        parameters=[
            OpenApiParameter(
                "q", str, description=f"{MIN_QUERY} to {MAX_QUERY} characters; without it nothing is found."
            ),
            OpenApiParameter("kind", str, enum=list(KIND_KEYS)),
            OpenApiParameter("organisation", OpenApiTypes.UUID, description="Only this organisation."),
            OpenApiParameter("limit", int, description=f"Results per kind, 1-50 (default {DEFAULT_LIMIT})."),
        ],
        responses={200: SearchResponseSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        query = (params.get("q") or "").strip()
        if not query:
            return Response(SearchResponseSerializer({"query": "", "groups": []}).data)  # nothing asked, nothing found
        if not MIN_QUERY <= len(query) <= MAX_QUERY:
            raise ValidationFailed(
                f"Search for {MIN_QUERY} to {MAX_QUERY} characters.", {"q": [f"{MIN_QUERY}-{MAX_QUERY} characters"]}
            )
        kind = params.get("kind") or None
        if kind is not None and kind not in KIND_KEYS:
            raise ValidationFailed("Unknown kind.", {"kind": [f"one of {', '.join(KIND_KEYS)}"]})
        try:
            limit = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 50:
            raise ValidationFailed("limit is 1 to 50.", {"limit": ["1-50"]})
        organisation = None
        if params.get("organisation"):
            if not is_uuid(params["organisation"]):
                raise ValidationFailed("organisation must be a UUID.", {"organisation": ["not a UUID"]})
            organisation = get_object_or_404(organisations_visible_to(request.user), id=params["organisation"])
        groups = search(request.user, query, organisation=organisation, kinds=(kind,) if kind else None, limit=limit)
        return Response(SearchResponseSerializer({"query": query, "groups": groups}).data)
