"""REST routes for data-subject requests, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.rights.api.views import SubjectRequestViewSet

router = SimpleRouter()
router.register("rights/requests", SubjectRequestViewSet, basename="rights-request")
urlpatterns = router.urls
