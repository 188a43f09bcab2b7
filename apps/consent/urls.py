"""HTML pages for consent."""

from django.urls import path

from apps.consent import views

app_name = "consent"
urlpatterns = [
    path("", views.consent_home, name="home"),
    path("imports/<uuid:import_id>/errors.csv", views.import_errors, name="import_errors"),
]
