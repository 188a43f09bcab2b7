"""Routes an affected person reaches without signing in: the per-deployment contestation and feedback page."""

from django.urls import path  # noqa: F401 - routes are added below as the views land

app_name = "public"
urlpatterns: list = []
