"""HTML pages for datasets."""

from django.urls import path

from apps.datasets import anonymisation_views, views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<uuid:dataset_id>/", views.dataset_detail, name="detail"),
    path("<uuid:dataset_id>/upload/", views.dataset_upload, name="upload"),
    path("versions/<uuid:version_id>/", views.version_detail, name="version"),
    path("versions/<uuid:version_id>/prepare/", views.version_prepare, name="prepare"),
    path("versions/<uuid:version_id>/datasheet/", views.datasheet, name="datasheet"),
    path("versions/<uuid:version_id>/anonymise/", anonymisation_views.anonymise, name="anonymise"),
    path("anonymisations/<uuid:anonymisation_id>/", anonymisation_views.anonymisation_detail, name="anonymisation"),
    path(
        "anonymisations/<uuid:anonymisation_id>/apply/",
        anonymisation_views.anonymisation_apply,
        name="anonymisation_apply",
    ),
]
