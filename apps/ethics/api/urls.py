from rest_framework.routers import SimpleRouter

from apps.ethics.api.views import (
    BoardViewSet,
    ConditionViewSet,
    ModelCardViewSet,
    NoticeViewSet,
    ReviewViewSet,
    WaiverViewSet,
)

router = SimpleRouter()
router.register("reviews", ReviewViewSet, basename="review")
router.register("waivers", WaiverViewSet, basename="waiver")
router.register("conditions", ConditionViewSet, basename="condition")
router.register("boards", BoardViewSet, basename="board")
router.register("notices", NoticeViewSet, basename="notice")
router.register("model-cards", ModelCardViewSet, basename="model-card")
urlpatterns = router.urls
