from django.urls import path

from apps.ethics import views

app_name = "ethics"
urlpatterns = [
    path("", views.review_list, name="list"),
    path("board/", views.board_settings, name="board"),
    path("notices/", views.notices, name="notices"),
    path("<uuid:review_id>/", views.review_detail, name="review"),
    path("<uuid:review_id>/vote/", views.review_vote, name="vote"),
    path("<uuid:review_id>/recuse/", views.review_recuse, name="recuse"),
    path("<uuid:review_id>/close/", views.review_close, name="close"),
    path("<uuid:review_id>/comment/", views.review_comment, name="comment"),
    path("<uuid:review_id>/answers/", views.review_answers, name="answers"),
    path("<uuid:review_id>/stance/", views.review_stance, name="stance"),
    path("<uuid:review_id>/waiver/", views.waiver_request, name="waiver_request"),
    path("waivers/<uuid:waiver_id>/vote/", views.waiver_vote, name="waiver_vote"),
    path("conditions/<uuid:condition_id>/met/", views.condition_met, name="condition_met"),
    path("deploy/<uuid:model_id>/", views.request_deployment, name="request_deployment"),
]
