from django.apps import AppConfig


class ThirdPartyConfig(AppConfig):
    name = "apps.thirdparty"
    label = "thirdparty"
    verbose_name = "Third-party models"
