"""REST routes of the portfolio, mounted under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.portfolio.api.views import InventoryView, RiskRegisterView, RiskViewSet

router = SimpleRouter()
router.register("risks", RiskViewSet, basename="risk")
urlpatterns = [
    path("portfolio/inventory/", InventoryView.as_view(), name="portfolio-inventory"),
    path("risk-register/", RiskRegisterView.as_view(), name="risk-register"),
    *router.urls,
]
