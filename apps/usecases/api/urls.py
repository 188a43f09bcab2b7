"""REST routes of the use-case register, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.usecases.api.views import UseCaseViewSet

router = SimpleRouter()
router.register("usecases", UseCaseViewSet, basename="usecase")
urlpatterns = router.urls
