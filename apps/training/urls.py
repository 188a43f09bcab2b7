from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("", views.training_home, name="home"),
    path("new/", views.training_new, name="new"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="cancel"),
]
