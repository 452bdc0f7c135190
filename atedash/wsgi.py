"""WSGI entry point: `gunicorn atedash.wsgi -c atedash/gunicorn.conf.py`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atedash.settings")

application = get_wsgi_application()

# Refuse to serve without a signing key: sessions and CSRF depend on it (raises ImproperlyConfigured).
from django.conf import settings  # noqa: E402

settings.SECRET_KEY  # noqa: B018
