"""HTML pages of third-party models."""

from django.urls import path

from apps.thirdparty import views

app_name = "thirdparty"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("new/", views.model_create, name="create"),
    path("<uuid:model_id>/", views.model_detail, name="detail"),
    path("<uuid:model_id>/edit/", views.model_edit, name="edit"),
    path("<uuid:model_id>/documentation/", views.model_documentation, name="documentation"),
    path("<uuid:model_id>/status/", views.model_status, name="status"),
]
