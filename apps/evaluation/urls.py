from django.urls import path

from apps.evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("<uuid:evaluation_id>/", views.evaluation_detail, name="detail"),
    path("<uuid:evaluation_id>/rerun/", views.evaluation_rerun, name="rerun"),
    path("<uuid:evaluation_id>/tighten/", views.tighten_gate, name="tighten"),
]
