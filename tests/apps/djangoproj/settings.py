"""Minimal Django settings: no database, no templates, no middleware."""
SECRET_KEY = "qilin-integration-tests-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djangoproj.urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
WSGI_APPLICATION = "djangoproj.wsgi.application"
