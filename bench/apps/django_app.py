"""Bench app: Django's hello world, one view returning HttpResponse (python3-django).

A whole project in one file: settings with no database, no sessions and the
default middleware a `startproject` site has minus those that need a database.
"""
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)


def hello(request):
    return HttpResponse("Hello, World!", content_type="text/plain")


urlpatterns = [path("", hello)]

from django.core.wsgi import get_wsgi_application  # noqa: E402  (needs settings first)

app = get_wsgi_application()
