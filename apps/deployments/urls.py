"""HTML routes of deployments and post-market monitoring. Public (no login) routes live in public_urls.py."""

from django.urls import path

from apps.deployments import plan_views, views

app_name = "deployments"
urlpatterns: list = [
    path("", views.inventory, name="inventory"),
    path("usecases/<uuid:usecase_id>/monitoring-plan/", plan_views.monitoring_plan, name="plan"),
    path("deploy/<uuid:model_id>/", views.deploy, name="deploy"),
    path("<uuid:deployment_id>/", views.deployment_detail, name="detail"),
    path("<uuid:deployment_id>/promote/", views.promote, name="promote"),
    path("<uuid:deployment_id>/rollback/", views.rollback, name="rollback"),
    path("<uuid:deployment_id>/withdraw/", views.withdraw, name="withdraw"),
    path("<uuid:deployment_id>/tokens/", views.token_create, name="token_create"),
    path("<uuid:deployment_id>/tokens/<uuid:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("<uuid:deployment_id>/report/", views.report_request, name="report"),
    path("<uuid:deployment_id>/batches/", views.batch_upload, name="upload"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<uuid:alert_id>/", views.alert_detail, name="alert"),
    path("alerts/<uuid:alert_id>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<uuid:alert_id>/assign/", views.alert_assign, name="alert_assign"),
    path("alerts/<uuid:alert_id>/comment/", views.alert_comment, name="alert_comment"),
    path("alerts/<uuid:alert_id>/resolve/", views.alert_resolve, name="alert_resolve"),
    path("alerts/<uuid:alert_id>/retrain/", views.alert_retrain, name="alert_retrain"),
    path("feedback/", views.feedback_list, name="feedback"),
    path("feedback/<uuid:feedback_id>/triage/", views.feedback_triage, name="feedback_triage"),
    path("feedback/<uuid:feedback_id>/close/", views.feedback_close, name="feedback_close"),
    path("<uuid:deployment_id>/feedback/", views.feedback_submit, name="feedback_submit"),
    path("retraining/<uuid:request_id>/", views.retraining_detail, name="retraining"),
    path("retraining/<uuid:request_id>/launch/", views.retraining_launch, name="retraining_launch"),
]
