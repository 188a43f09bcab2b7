from rest_framework.routers import SimpleRouter

from apps.compliance.api.views import FrameworkViewSet, UseCaseComplianceViewSet

router = SimpleRouter()
router.register("compliance/frameworks", FrameworkViewSet, basename="compliance-framework")
router.register("compliance/usecases", UseCaseComplianceViewSet, basename="compliance-usecase")
urlpatterns = router.urls
