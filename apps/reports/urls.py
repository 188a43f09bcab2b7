from django.urls import path

from apps.reports import views

app_name = "reports"
urlpatterns = [
    path("", views.library, name="library"),
    path("issue/", views.issue, name="issue"),
    path("verify/", views.verify, name="verify"),
    path("signing/", views.signing, name="signing"),
    path("<uuid:report_id>/", views.detail, name="detail"),
    path("<uuid:report_id>/download/", views.download, name="download"),
]
