"""REST route of global search, mounted under /api/v1/."""

from django.urls import path

from apps.search.api.views import SearchView

urlpatterns = [path("search/", SearchView.as_view(), name="search")]
