"""REST routes for consent, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.consent.api.views import ConsentImportViewSet, ConsentRecordViewSet

router = SimpleRouter()
router.register("consent/records", ConsentRecordViewSet, basename="consent-record")
router.register("consent/imports", ConsentImportViewSet, basename="consent-import")
urlpatterns = router.urls
