"""REST routes of the audit trail, mounted under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.audit.api.views import AuditEventViewSet, AuditHeadView, AuditVerifyView

router = SimpleRouter()
router.register("audit/events", AuditEventViewSet, basename="audit-event")
urlpatterns = [
    path("audit/head/", AuditHeadView.as_view(), name="audit-head"),
    path("audit/verify/", AuditVerifyView.as_view(), name="audit-verify"),
    *router.urls,
]
