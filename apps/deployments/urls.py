"""HTML routes of deployments and post-market monitoring. Public (no login) routes live in public_urls.py."""

from django.urls import path  # noqa: F401 - routes are added below as the views land

app_name = "deployments"
urlpatterns: list = []
