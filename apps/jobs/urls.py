"""HTML pages for jobs."""

from django.urls import path

from apps.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("diagnostics/", views.diagnostics, name="diagnostics"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/progress/", views.job_progress, name="progress"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
]
