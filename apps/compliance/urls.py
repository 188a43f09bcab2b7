from django.urls import path

from apps.compliance import views

app_name = "compliance"

urlpatterns = [
    path("frameworks/", views.framework_list, name="frameworks"),
    path("frameworks/upload/", views.framework_upload, name="framework_upload"),
    path("frameworks/<slug:key>/", views.framework_detail, name="framework"),
    path("usecases/<uuid:usecase_id>/<slug:key>/", views.requirements, name="requirements"),
    path("usecases/<uuid:usecase_id>/<slug:key>/statement/", views.statement, name="statement"),
    path("usecases/<uuid:usecase_id>/<slug:key>/<str:code>/confirm/", views.confirm, name="confirm"),
    path("usecases/<uuid:usecase_id>/<slug:key>/<str:code>/evidence/", views.attach, name="attach"),
    path("evidence/<uuid:link_id>/remove/", views.detach, name="detach"),
]
