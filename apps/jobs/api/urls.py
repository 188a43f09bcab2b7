"""REST routes for jobs, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.jobs.api.views import JobViewSet

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
