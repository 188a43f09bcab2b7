"""REST routes of the accounts app, mounted under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api.views import (
    ApiTokenViewSet,
    AuditorGrantViewSet,
    InvitationViewSet,
    MembershipViewSet,
    MeView,
    OrganisationViewSet,
    UserSessionViewSet,
)

router = SimpleRouter()
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("auditor-grants", AuditorGrantViewSet, basename="auditor-grant")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("sessions", UserSessionViewSet, basename="session")
urlpatterns = [path("me/", MeView.as_view(), name="me"), *router.urls]
