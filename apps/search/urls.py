"""The search results page."""

from django.urls import path

from apps.search import views

app_name = "search"
urlpatterns = [path("", views.results, name="results")]
