"""HTML pages of the portfolio."""

from django.urls import path

from apps.portfolio import views

app_name = "portfolio"
urlpatterns = [
    path("", views.inventory, name="inventory"),
    path("export.csv", views.inventory_export, name="export"),
    path("risks/", views.risk_register, name="risks"),
    path("risks/new/", views.risk_create, name="risk_create"),
    path("risks/<uuid:risk_id>/", views.risk_detail, name="risk_detail"),
    path("risks/<uuid:risk_id>/edit/", views.risk_edit, name="risk_edit"),
    path("risks/<uuid:risk_id>/close/", views.risk_close, name="risk_close"),
]
