from django.urls import path

from apps.modelcards import views

app_name = "modelcards"
urlpatterns = [path("<uuid:model_id>/", views.card_edit, name="edit")]
