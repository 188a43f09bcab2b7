"""REST endpoints of the ethics board: reviews and their votes, recusals, checklist, discussion and waivers;
conditions; the board's rules; notices; model cards. Every write is one service call."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.selectors import organisation_ids_for, organisations_visible_to
from apps.ethics import services
from apps.ethics.api.serializers import (
    AnswersSerializer,
    BoardSerializer,
    CommentSerializer,
    ConditionSerializer,
    DecisionSerializer,
    DeploymentRequestSerializer,
    ModelCardSerializer,
    ModelCardWriteSerializer,
    NoteSerializer,
    NoticeSerializer,
    ReasonSerializer,
    ReviewDetailSerializer,
    ReviewSerializer,
    StanceSerializer,
    VoteRequestSerializer,
    VoteSerializer,
    WaiverRequestSerializer,
    WaiverSerializer,
    WaiverVoteSerializer,
)
from apps.ethics.models import Condition, Notice, Waiver
from apps.ethics.permissions import visible_to
from apps.ethics.selectors import board_of
from apps.modelcards.models import ModelCardRevision
from apps.modelcards.services import modelcard_save
from apps.training.permissions import models_visible_to


@extend_schema(tags=["ethics board"])
class ReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return ReviewDetailSerializer if self.action == "retrieve" else ReviewSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = visible_to(self.request.user).order_by("-created_at")
        params = self.request.query_params
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        return queryset

    @extend_schema(parameters=[OpenApiParameter("status", str), OpenApiParameter("kind", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=DeploymentRequestSerializer,
        responses={201: ReviewSerializer},
        description="Request the board's deployment approval of a model version.",
    )
    def create(self, request: Request) -> Response:
        payload = DeploymentRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = get_object_or_404(models_visible_to(request.user), id=payload.validated_data["model_version"])
        review = services.review_request_deployment(
            actor=request.user, model_version=model, answers=payload.validated_data["answers"] or None
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VoteRequestSerializer, responses={201: VoteSerializer})
    @action(detail=True, methods=["post"])
    def votes(self, request: Request, pk: str) -> Response:
        review = self.get_object()
        payload = VoteRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        vote = services.vote_cast(actor=request.user, review=review, **payload.validated_data)
        return Response(VoteSerializer(vote).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses={201: ReasonSerializer})
    @action(detail=True, methods=["post"])
    def recusal(self, request: Request, pk: str) -> Response:
        review = self.get_object()
        payload = ReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        recusal = services.review_recuse(actor=request.user, review=review, **payload.validated_data)
        return Response({"reason": recusal.reason}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        decision = services.review_close(actor=request.user, review=self.get_object())
        return Response(DecisionSerializer(decision).data)

    @extend_schema(request=AnswersSerializer, responses={200: ReviewSerializer})
    @action(detail=True, methods=["post"])
    def answers(self, request: Request, pk: str) -> Response:
        payload = AnswersSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_answer_checklist(
            actor=request.user, review=self.get_object(), answers=payload.validated_data["answers"]
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=StanceSerializer, responses={201: StanceSerializer})
    @action(detail=True, methods=["post"])
    def stances(self, request: Request, pk: str) -> Response:
        payload = StanceSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.checklist_take_stance(actor=request.user, review=self.get_object(), **payload.validated_data)
        return Response(StanceSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses={200: CommentSerializer(many=True)})
    @extend_schema(methods=["POST"], request=CommentSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # GET answers a plain array, unpaginated
    def comments(self, request: Request, pk: str) -> Response:
        review = self.get_object()
        if request.method == "GET":
            return Response(CommentSerializer(review.comments.select_related("author"), many=True).data)
        payload = CommentSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        comment = services.comment_add(actor=request.user, review=review, **payload.validated_data)
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WaiverRequestSerializer, responses={201: WaiverSerializer})
    @action(detail=True, methods=["post"])
    def waivers(self, request: Request, pk: str) -> Response:
        payload = WaiverRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        waiver = services.waiver_request(actor=request.user, review=self.get_object(), **payload.validated_data)
        return Response(WaiverSerializer(waiver).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["ethics board"])
class WaiverViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WaiverSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Waiver.objects.filter(review__in=visible_to(self.request.user)).select_related("requested_by")

    @extend_schema(request=WaiverVoteSerializer, responses={201: WaiverVoteSerializer})
    @action(detail=True, methods=["post"])
    def votes(self, request: Request, pk: str) -> Response:
        payload = WaiverVoteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        vote = services.waiver_vote(actor=request.user, waiver=self.get_object(), **payload.validated_data)
        return Response({"choice": vote.choice, "reason": vote.reason}, status=status.HTTP_201_CREATED)


@extend_schema(tags=["ethics board"])
class ConditionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConditionSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return (
            Condition.objects.filter(organisation_id__in=organisation_ids_for(self.request.user))
            .select_related("owner", "decision")
            .order_by("due_on")
        )

    @extend_schema(request=NoteSerializer, responses={200: ConditionSerializer})
    @action(detail=True, methods=["post"])
    def met(self, request: Request, pk: str) -> Response:
        payload = NoteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        condition = services.condition_mark_met(
            actor=request.user, condition=self.get_object(), note=payload.validated_data["note"]
        )
        return Response(ConditionSerializer(condition).data)


@extend_schema(
    tags=["ethics board"], parameters=[OpenApiParameter("organisation", OpenApiTypes.UUID, OpenApiParameter.PATH)]
)
class BoardViewSet(viewsets.GenericViewSet):
    """The board of an organisation, addressed by the organisation's id."""

    serializer_class = BoardSerializer
    lookup_url_kwarg = "organisation"

    def _organisation(self, organisation: str):  # type: ignore[no-untyped-def]
        return get_object_or_404(organisations_visible_to(self.request.user), id=organisation)

    def retrieve(self, request: Request, organisation: str) -> Response:
        return Response(BoardSerializer(board_of(self._organisation(organisation))).data)

    def partial_update(self, request: Request, organisation: str) -> Response:
        payload = BoardSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "chair_id" in data:
            data["chair"] = data.pop("chair_id")
        board = services.board_update(actor=request.user, organisation=self._organisation(organisation), data=data)
        return Response(BoardSerializer(board).data)


@extend_schema(tags=["ethics board"])
class NoticeViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = NoticeSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Notice.objects.filter(user=self.request.user)

    @extend_schema(request=None, responses={200: None})
    @action(detail=False, methods=["post"])
    def read(self, request: Request) -> Response:
        return Response({"marked_read": services.notices_mark_read(actor=request.user)})


@extend_schema(tags=["model cards"])
class ModelCardViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelCardSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        queryset = ModelCardRevision.objects.filter(model_version__in=models_visible_to(self.request.user))
        if self.request.query_params.get("model_version"):
            queryset = queryset.filter(model_version_id=self.request.query_params["model_version"])
        return queryset.select_related("author")

    @extend_schema(parameters=[OpenApiParameter("model_version", str)])
    def list(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ModelCardWriteSerializer, responses={201: ModelCardSerializer})
    def create(self, request: Request) -> Response:
        payload = ModelCardWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model = get_object_or_404(models_visible_to(request.user), id=payload.validated_data["model_version"])
        revision = modelcard_save(
            actor=request.user, model_version=model, narrative=payload.validated_data["narrative"]
        )
        return Response(ModelCardSerializer(revision).data, status=status.HTTP_201_CREATED)
