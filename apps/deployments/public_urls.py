"""Routes an affected person reaches without signing in: the per-deployment contestation and feedback page."""

from django.urls import path

from apps.deployments import public_views

app_name = "public"
urlpatterns: list = [
    path("d/<slug:slug>/", public_views.public_feedback, name="feedback"),
    path("d/<slug:slug>/thanks/<uuid:feedback_id>/", public_views.public_thanks, name="thanks"),
    path("d/<slug:slug>/how-decisions-are-made/", public_views.public_explanation, name="explanation"),
]
