"""REST routes for datasets, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.datasets.api.views import AnonymisationViewSet, DatasetVersionViewSet, DatasetViewSet

router = SimpleRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("dataset-versions", DatasetVersionViewSet, basename="dataset-version")
router.register("anonymisations", AnonymisationViewSet, basename="anonymisation")
urlpatterns = router.urls
