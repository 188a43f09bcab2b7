"""HTML pages for data-subject requests."""

from django.urls import path

from apps.rights import export_views, views

app_name = "rights"
urlpatterns = [
    path("", views.request_list, name="list"),
    path("register/", views.request_register, name="register"),
    path("<uuid:pk>/", views.request_detail, name="detail"),
    path("<uuid:pk>/assign/", views.request_assign, name="assign"),
    path("<uuid:pk>/extend/", views.request_extend, name="extend"),
    path("<uuid:pk>/decide/", views.request_decide, name="decide"),
    path("<uuid:pk>/execute/", views.request_execute, name="execute"),
    path("<uuid:pk>/trace/", views.request_trace, name="trace"),
    path("exports/<uuid:pk>/download/", export_views.export_download, name="export_download"),
]
