from rest_framework.routers import SimpleRouter

from apps.evaluation.api.mitigation import MitigationViewSet, RowExplanationViewSet
from apps.evaluation.api.views import EvaluationViewSet

router = SimpleRouter()
router.register("evaluations", EvaluationViewSet, basename="evaluation")
router.register("mitigations", MitigationViewSet, basename="mitigation")
router.register("row-explanations", RowExplanationViewSet, basename="row-explanation")
urlpatterns = router.urls
