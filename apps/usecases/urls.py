"""HTML pages of the use-case register."""

from django.urls import path

from apps.usecases import views

app_name = "usecases"
urlpatterns = [
    path("", views.usecase_list, name="list"),
    path("new/", views.usecase_create, name="create"),
    path("<uuid:usecase_id>/", views.usecase_detail, name="detail"),
    path("<uuid:usecase_id>/edit/", views.usecase_edit, name="edit"),
    path("<uuid:usecase_id>/dpia/", views.usecase_dpia, name="dpia"),
    path("<uuid:usecase_id>/policies/", views.usecase_policies, name="policies"),
    path("<uuid:usecase_id>/transition/", views.usecase_transition, name="transition"),
]
