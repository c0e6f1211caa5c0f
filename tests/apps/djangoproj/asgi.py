"""ASGI entry point: `djangoproj.asgi:application` (qilin -k asyncio)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoproj.settings")

application = get_asgi_application()
