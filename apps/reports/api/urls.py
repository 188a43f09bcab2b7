from rest_framework.routers import SimpleRouter

from apps.reports.api.views import ReportViewSet, SigningIdentityViewSet

router = SimpleRouter()
router.register("reports", ReportViewSet, basename="report")
router.register("signing-identities", SigningIdentityViewSet, basename="signing-identity")
urlpatterns = router.urls
