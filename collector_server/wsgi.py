import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
application = get_wsgi_application()

# Each gunicorn worker loads this module: what it holds now is never collected again, so full
# collections stay short (collector_server.gc_tuning).
from collector_server.gc_tuning import freeze_startup_objects  # noqa: E402

freeze_startup_objects()
