from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.deployments.api.alerts import AlertViewSet, AlertWebhookViewSet
from apps.deployments.api.feedback import FeedbackViewSet
from apps.deployments.api.retraining import RetrainingRequestViewSet
from apps.deployments.api.views import (
    DeploymentViewSet,
    MonitoringWindowViewSet,
    ScoreResultView,
    ScoreView,
    ScoringTokenViewSet,
)

router = SimpleRouter()
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("scoring-tokens", ScoringTokenViewSet, basename="scoring-token")
router.register("monitoring-windows", MonitoringWindowViewSet, basename="monitoring-window")
router.register("alerts", AlertViewSet, basename="alert")
router.register("alert-webhooks", AlertWebhookViewSet, basename="alert-webhook")
router.register("feedback", FeedbackViewSet, basename="feedback")
router.register("retraining-requests", RetrainingRequestViewSet, basename="retraining-request")
urlpatterns = router.urls + [
    # Scoring answers to the deployment's scoring tokens only (apps/deployments/authentication.py).
    path("deployments/<uuid:pk>/score/", ScoreView.as_view(), name="deployment-score"),
    path("deployments/<uuid:pk>/score/<uuid:job>/", ScoreResultView.as_view(), name="deployment-score-result"),
]
