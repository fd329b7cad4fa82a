"""One settings module, driven by environment variables (see README "Settings").

A bad value stops start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from shared import config
from shared.config import ConfigError

BASE_DIR = Path(__file__).resolve().parent
# WhiteNoise warns when STATIC_ROOT has not been collected yet (tests, `make up`); harmless there.
warnings.filterwarnings("ignore", message="No directory at")

try:
    DEBUG = config.envbool("DEBUG", False)
    SECRET_KEY = config.envsecret("SECRET_KEY", "")
    if not SECRET_KEY:
        testing = "pytest" in sys.modules
        if not (DEBUG or testing or config.envbool("FLEETWATCH_ALLOW_INSECURE_KEY", False)):
            raise ConfigError("SECRET_KEY must be set (or SECRET_KEY_FILE) unless DEBUG=true")
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"
    ALLOWED_HOSTS = config.envlist("ALLOWED_HOSTS", ["*"])
    CSRF_TRUSTED_ORIGINS = config.envlist("CSRF_TRUSTED_ORIGINS", [])

    DATABASE_URL = config.envsecret("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetwatch")
    _db = config.parse_database_url(DATABASE_URL)
    _db["CONN_MAX_AGE"] = config.envint("DB_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
    _db["TEST"] = {"NAME": config.envstr("FLEETWATCH_TEST_DB_NAME", "") or None}
    DATABASES = {"default": _db}

    REDIS_URL = config.check_redis_url(config.envsecret("REDIS_URL", "redis://127.0.0.1:6379/0"))
    # Blocking stream reads must end well before the socket times out (checked at start-up).
    REDIS_SOCKET_TIMEOUT = config.envfloat("REDIS_SOCKET_TIMEOUT", 30.0, minimum=1.0)
    STREAM_PREFIX = config.envstr("FLEETWATCH_STREAM_PREFIX", "fleetwatch")

    # Storage and retention (days)
    RAW_RETENTION_DAYS = config.envint("RAW_RETENTION_DAYS", 7, minimum=1)
    ROLLUP_1M_RETENTION_DAYS = config.envint("ROLLUP_1M_RETENTION_DAYS", 30, minimum=1)
    ROLLUP_1H_RETENTION_DAYS = config.envint("ROLLUP_1H_RETENTION_DAYS", 365, minimum=1)
    LOG_RETENTION_DAYS = config.envint("LOG_RETENTION_DAYS", 7, minimum=1)
    PARTITIONS_AHEAD_DAYS = config.envint("PARTITIONS_AHEAD_DAYS", 3, minimum=1, maximum=60)

    # Ingest
    INGEST_CHUNK = config.envint("INGEST_CHUNK", 500, minimum=1, maximum=10000)
    INGEST_JOB_SECONDS = config.envfloat("INGEST_JOB_SECONDS", 20.0, minimum=1.0)
    INGEST_BLOCK_MS = config.envint("INGEST_BLOCK_MS", 1000, minimum=0)
    INGEST_CLAIM_IDLE_MS = config.envint("INGEST_CLAIM_IDLE_MS", 60000, minimum=1000)
    HOST_DOWN_AFTER_SECONDS = config.envint("HOST_DOWN_AFTER_SECONDS", 120, minimum=10)
    DEADLETTER_MAXLEN = config.envint("DEADLETTER_MAXLEN", 10000, minimum=1)
    # A Redis that may evict keys can silently lose unread stream entries: refuse to start.
    ALLOW_REDIS_EVICTION = config.envbool("FLEETWATCH_ALLOW_REDIS_EVICTION", False)

    # Health endpoint thresholds
    HEALTH_MAX_STREAM_LAG = config.envint("HEALTH_MAX_STREAM_LAG", 100000, minimum=1)
    HEALTH_MAX_PENDING_AGE_SECONDS = config.envint("HEALTH_MAX_PENDING_AGE_SECONDS", 300, minimum=1)
    HEALTH_WORKER_HEARTBEAT_SECONDS = config.envint("HEALTH_WORKER_HEARTBEAT_SECONDS", 480, minimum=1)
    HEALTH_SCHEDULER_HEARTBEAT_SECONDS = config.envint("HEALTH_SCHEDULER_HEARTBEAT_SECONDS", 120, minimum=1)

    # Alerting (names kept from the seed documents)
    ALERT_CHECK_INTERVAL = config.envint("ALERT_CHECK_INTERVAL", 15, minimum=1)
    ALERT_COOLDOWN_PERIOD = config.envint("ALERT_COOLDOWN_PERIOD", 1800, minimum=0)
    SMTP_SERVER = config.envstr("SMTP_SERVER", "")
    SMTP_PORT = config.envint("SMTP_PORT", 587, minimum=1, maximum=65535)
    SMTP_USERNAME = config.envstr("SMTP_USERNAME", "")
    SMTP_PASSWORD = config.envsecret("SMTP_PASSWORD", "")
    ALERT_FROM_EMAIL = config.envstr("ALERT_FROM_EMAIL", "")
    ALERT_TO_EMAILS = config.envlist("ALERT_TO_EMAILS", [])
    SLACK_WEBHOOK_URL = config.envsecret("SLACK_WEBHOOK_URL", "")
    # Seconds between delivery attempts of a notification after a transient error (one retry each).
    _retry = config.envlist("NOTIFY_RETRY_INTERVALS", ["5", "15", "60", "180", "600"])
    if not _retry or not all(item.isdigit() and int(item) > 0 for item in _retry):
        raise ConfigError(
            f"NOTIFY_RETRY_INTERVALS={','.join(_retry)!r} must be positive seconds, comma-separated"
        )
    NOTIFY_RETRY_INTERVALS = [int(item) for item in _retry]

    # Organisations: where existing data, new hosts and the environment's channels go
    DEFAULT_ORGANIZATION = config.envstr("DEFAULT_ORGANIZATION", "default")
    if not DEFAULT_ORGANIZATION or not DEFAULT_ORGANIZATION.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            f"DEFAULT_ORGANIZATION={DEFAULT_ORGANIZATION!r} must be a slug (letters, digits, - and _)"
        )

    # /metrics for anonymous scrapes (every organisation, labelled); false: a token is required
    METRICS_PUBLIC = config.envbool("METRICS_PUBLIC", True)

    # Logging
    LOG_LEVEL = config.envstr("LOG_LEVEL", "INFO").upper()
    LOG_FORMAT = config.envstr("LOG_FORMAT", "json").lower()
    if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL={LOG_LEVEL!r} is not a log level")
    if LOG_FORMAT not in {"json", "text"}:
        raise ConfigError(f"LOG_FORMAT={LOG_FORMAT!r} must be 'json' or 'text'")
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "collector_server.monitoring",
    "collector_server.alerts",
    "collector_server.logs",
    "collector_server.orgs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the dashboard's static files under gunicorn, without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every request gets an organisation scope (nothing until the caller is known).
    "collector_server.orgs.middleware.OrganizationScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "collector_server.urls"
WSGI_APPLICATION = "collector_server.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = config.envstr("STATIC_ROOT", str(BASE_DIR.parent / "var" / "static"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "collector_server.orgs.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["collector_server.orgs.permissions.OrganizationRole"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "collector_server.monitoring.api.pagination.CheckedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "collector_server.monitoring.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fleetwatch API",
    "DESCRIPTION": "Metrics, logs, hosts and alerts of a fleet of hosts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "collector_server.orgs.schema.add_organization_header",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "shared.jsonlog.JSONFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
