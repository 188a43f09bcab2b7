from django.urls import path

from apps.evaluation import model_page, views

app_name = "evaluation"
urlpatterns = [
    path("<uuid:evaluation_id>/", views.evaluation_detail, name="detail"),
    path("<uuid:evaluation_id>/rerun/", views.evaluation_rerun, name="rerun"),
    path("<uuid:evaluation_id>/tighten/", views.tighten_gate, name="tighten"),
    path("models/<uuid:model_id>/", model_page.model_detail, name="model"),
    path("models/<uuid:model_id>/explain/", model_page.explain_row, name="explain_row"),
    path("models/<uuid:model_id>/explanations/<uuid:job_id>/", model_page.row_explanation, name="row_explanation"),
    path("models/<uuid:model_id>/mitigate/", model_page.mitigate, name="mitigate"),
]
