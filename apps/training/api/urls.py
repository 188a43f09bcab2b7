from rest_framework.routers import SimpleRouter

from apps.training.api.views import ModelVersionViewSet, PrivacyBudgetViewSet, TrainingRunViewSet

router = SimpleRouter()
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("privacy-budgets", PrivacyBudgetViewSet, basename="privacy-budget")
urlpatterns = router.urls
