"""REST routes of third-party models, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from apps.thirdparty.api.views import ThirdPartyModelViewSet

router = SimpleRouter()
router.register("third-party-models", ThirdPartyModelViewSet, basename="third-party-model")
urlpatterns = router.urls
