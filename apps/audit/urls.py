"""HTML pages of the audit trail."""

from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.trail, name="trail"),
    path("verify/", views.verify, name="verify"),
]
