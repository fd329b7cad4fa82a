"""One settings module, driven by environment variables (see README "Settings").

A bad value stops start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import sys
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from alerting_worker.alerting import egress
from shared import config
from shared.config import ConfigError

BASE_DIR = Path(__file__).resolve().parent
# WhiteNoise warns when STATIC_ROOT has not been collected yet (tests, `make up`); harmless there.
warnings.filterwarnings("ignore", message="No directory at")

try:
    DEBUG = config.envbool("DEBUG", False)
    SECRET_KEY = config.envsecret("SECRET_KEY", "")
    testing = "pytest" in sys.modules
    if not SECRET_KEY:
        if not (DEBUG or testing or config.envbool("FLEETWATCH_ALLOW_INSECURE_KEY", False)):
            raise ConfigError("SECRET_KEY must be set (or SECRET_KEY_FILE) unless DEBUG=true")
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"
    ALLOWED_HOSTS = config.envlist("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        if not (DEBUG or testing):
            raise ConfigError(
                "ALLOWED_HOSTS must be set (the host names the server answers to) when DEBUG is false"
            )
        ALLOWED_HOSTS = ["*"]
    CSRF_TRUSTED_ORIGINS = config.envlist("CSRF_TRUSTED_ORIGINS", [])

    DATABASE_URL = config.envsecret("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetwatch")
    _db = config.parse_database_url(DATABASE_URL)
    _db["CONN_MAX_AGE"] = config.envint("DB_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
    _db["TEST"] = {"NAME": config.envstr("FLEETWATCH_TEST_DB_NAME", "") or None}
    DATABASES = {"default": _db}

    REDIS_URL = config.check_redis_url(config.envsecret("REDIS_URL", "redis://127.0.0.1:6379/0"))
    # The streams (and the pipeline counters) may live on another Redis, off the RQ one; empty: REDIS_URL.
    _stream_url = config.envsecret("STREAM_REDIS_URL", "")
    STREAM_REDIS_URL = config.check_redis_url(_stream_url, name="STREAM_REDIS_URL") if _stream_url else ""
    # Blocking stream reads must end well before the socket times out (checked at start-up).
    REDIS_SOCKET_TIMEOUT = config.envfloat("REDIS_SOCKET_TIMEOUT", 30.0, minimum=1.0)
    STREAM_PREFIX = config.envstr("FLEETWATCH_STREAM_PREFIX", "fleetwatch")

    # Past one box (docs/scaling.md): sharded streams, a Redis Cluster for them, a read replica.
    from shared import streams as _streams

    try:
        STREAM_SHARDS = _streams.parse_shards(config.envstr("STREAM_SHARDS", "1") or "1")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    STREAM_REDIS_CLUSTER = config.envbool("STREAM_REDIS_CLUSTER", False)
    if STREAM_REDIS_CLUSTER and not STREAM_REDIS_URL:
        raise ConfigError("STREAM_REDIS_CLUSTER=true needs STREAM_REDIS_URL (a node of the cluster)")
    if STREAM_REDIS_CLUSTER and urlparse(STREAM_REDIS_URL).path.strip("/") not in ("", "0"):
        raise ConfigError("STREAM_REDIS_URL: a Redis Cluster has only database 0")
    DATABASE_REPLICA_URL = config.envsecret("DATABASE_REPLICA_URL", "")
    if DATABASE_REPLICA_URL:
        _replica = config.parse_database_url(DATABASE_REPLICA_URL, name="DATABASE_REPLICA_URL")
        _replica["CONN_MAX_AGE"] = _db["CONN_MAX_AGE"]
        _replica["CONN_HEALTH_CHECKS"] = True
        _replica["OPTIONS"].setdefault("connect_timeout", 3)  # a replica down must not hang requests
        _replica["TEST"] = {"MIRROR": "default"}  # tests read the primary's test database
        DATABASES["replica"] = _replica
        DATABASE_ROUTERS = ["collector_server.replica.ReplicaRouter"]
    HEALTH_MAX_REPLICA_LAG_SECONDS = config.envfloat("HEALTH_MAX_REPLICA_LAG_SECONDS", 30.0, minimum=0.1)
    # After a write, a client reads from the primary this long (read-your-writes).
    DATABASE_REPLICA_STICKY_SECONDS = config.envint("DATABASE_REPLICA_STICKY_SECONDS", 15, minimum=1)

    # Storage and retention (days)
    RAW_RETENTION_DAYS = config.envint("RAW_RETENTION_DAYS", 7, minimum=1)
    ROLLUP_1M_RETENTION_DAYS = config.envint("ROLLUP_1M_RETENTION_DAYS", 30, minimum=1)
    # PromQL query_range keeps the blocks of a range older than the rollups' watermark in Redis
    # (collector_server/prometheus_api/promql/results_cache.py; docs/prometheus.md).
    PROMQL_RESULTS_CACHE = config.envbool("PROMQL_RESULTS_CACHE", True)
    ROLLUP_1H_RETENTION_DAYS = config.envint("ROLLUP_1H_RETENTION_DAYS", 365, minimum=1)
    LOG_RETENTION_DAYS = config.envint("LOG_RETENTION_DAYS", 7, minimum=1)
    PARTITIONS_AHEAD_DAYS = config.envint("PARTITIONS_AHEAD_DAYS", 3, minimum=1, maximum=60)

    # Ingest
    INGEST_CHUNK = config.envint("INGEST_CHUNK", 2000, minimum=1, maximum=10000)
    # A chunk of big batches reads fewer entries: about this many samples or log records (StreamConsumer.read_count).
    INGEST_CHUNK_SAMPLES = config.envint("INGEST_CHUNK_SAMPLES", 100_000, minimum=1000)
    INGEST_JOB_SECONDS = config.envfloat("INGEST_JOB_SECONDS", 20.0, minimum=1.0)
    INGEST_BLOCK_MS = config.envint("INGEST_BLOCK_MS", 1000, minimum=0)
    INGEST_CLAIM_IDLE_MS = config.envint("INGEST_CLAIM_IDLE_MS", 60000, minimum=1000)
    # An entry delivered more often than this is dead-lettered with its last error.
    INGEST_MAX_DELIVERIES = config.envint("INGEST_MAX_DELIVERIES", 10, minimum=2)
    # Per-host limits, checked by the worker (README "Per-host limits"); 0 turns one off.
    LIMIT_NEW_SERIES_PER_HOST_PER_HOUR = config.envint("LIMIT_NEW_SERIES_PER_HOST_PER_HOUR", 5000, minimum=0)
    LIMIT_SERIES_PER_HOST = config.envint("LIMIT_SERIES_PER_HOST", 50000, minimum=0)
    LIMIT_LABELS_PER_SERIES = config.envint("LIMIT_LABELS_PER_SERIES", 30, minimum=0)
    LIMIT_LABEL_NAME_LENGTH = config.envint("LIMIT_LABEL_NAME_LENGTH", 128, minimum=0)
    LIMIT_LABEL_VALUE_LENGTH = config.envint("LIMIT_LABEL_VALUE_LENGTH", 2048, minimum=0)
    LIMIT_LOG_ATTRS_BYTES = config.envint("LIMIT_LOG_ATTRS_BYTES", 65536, minimum=0)
    LIMIT_BATCH_BYTES = config.envint(
        "LIMIT_BATCH_BYTES", 4 * 1024 * 1024, minimum=0, maximum=16 * 1024 * 1024
    )
    LIMIT_LOG_INTERVAL_SECONDS = config.envint("LIMIT_LOG_INTERVAL_SECONDS", 60, minimum=1)
    HOST_DOWN_AFTER_SECONDS = config.envint("HOST_DOWN_AFTER_SECONDS", 120, minimum=10)
    # The fleet page's sparklines are computed at most this often per range (0: every request).
    UI_SPARKLINE_CACHE_SECONDS = config.envint("UI_SPARKLINE_CACHE_SECONDS", 10, minimum=0, maximum=300)
    DEADLETTER_MAXLEN = config.envint("DEADLETTER_MAXLEN", 10000, minimum=1)
    # Drains log at DEBUG; each worker logs one INFO summary (batches, samples, lag) this often.
    INGEST_LOG_SUMMARY_SECONDS = config.envint("INGEST_LOG_SUMMARY_SECONDS", 60, minimum=1)
    # A Redis that may evict keys can silently lose unread stream entries: refuse to start.
    ALLOW_REDIS_EVICTION = config.envbool("FLEETWATCH_ALLOW_REDIS_EVICTION", False)
    # A Redis without an append-only file loses un-ingested batches on a restart: reported as
    # degraded (worker, scheduler, health) unless a test rig opts out.
    ALLOW_VOLATILE_REDIS = config.envbool("FLEETWATCH_ALLOW_VOLATILE_REDIS", False)
    # Longest pause between reconnection tries of a worker or scheduler during an outage.
    RECONNECT_MAX_SECONDS = config.envfloat("RECONNECT_MAX_SECONDS", 5.0, minimum=0.1, maximum=300.0)

    # Agent identity (docs/security.md). Tests push unsigned batches unless they opt in.
    REQUIRE_SIGNED_BATCHES = config.envbool("FLEETWATCH_REQUIRE_SIGNED_BATCHES", "pytest" not in sys.modules)
    ENROLLMENT_KEY = config.envsecret("FLEETWATCH_ENROLLMENT_KEY", "")
    ENROLLMENT_ROTATION_GRACE_SECONDS = config.envint("ENROLLMENT_ROTATION_GRACE_SECONDS", 86400, minimum=0)
    ENROLLMENT_CACHE_SECONDS = config.envint("ENROLLMENT_CACHE_SECONDS", 30, minimum=1)
    REDIS_AGENT_USER = config.envstr("REDIS_AGENT_USER", "fleetwatch-agent")

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
    # Kill switches of the seeds: false stops dispatching to every channel of that kind.
    ENABLE_EMAIL_ALERTS = config.envbool("ENABLE_EMAIL_ALERTS", True)
    ENABLE_SLACK_ALERTS = config.envbool("ENABLE_SLACK_ALERTS", True)
    # Where users reach this server: externalURL and generatorURL of notifications link here.
    ALERT_EXTERNAL_URL = config.envstr("ALERT_EXTERNAL_URL", "http://localhost:8000").rstrip("/")
    if not ALERT_EXTERNAL_URL.startswith(("http://", "https://")):
        raise ConfigError(f"ALERT_EXTERNAL_URL={ALERT_EXTERNAL_URL!r} must be an http(s) URL")
    # Seconds between delivery attempts of a notification after a transient error (one retry each).
    _retry = config.envlist("NOTIFY_RETRY_INTERVALS", ["5", "15", "60", "180", "600"])
    if not _retry or not all(item.isdigit() and int(item) > 0 for item in _retry):
        raise ConfigError(
            f"NOTIFY_RETRY_INTERVALS={','.join(_retry)!r} must be positive seconds, comma-separated"
        )
    NOTIFY_RETRY_INTERVALS = [int(item) for item in _retry]
    # Outgoing requests (docs/security.md): non-public destinations allowed anyway, redirects followed.
    FLEETWATCH_ALLOWED_TARGETS = config.envlist("FLEETWATCH_ALLOWED_TARGETS", [])
    try:
        egress.parse_allowed_targets(",".join(FLEETWATCH_ALLOWED_TARGETS))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    NOTIFY_MAX_REDIRECTS = config.envint("NOTIFY_MAX_REDIRECTS", 0, minimum=0, maximum=10)

    # Hardening (docs/security.md): off for plain HTTP on a laptop, on in the production examples.
    SESSION_COOKIE_SECURE = config.envbool("SESSION_COOKIE_SECURE", False)
    CSRF_COOKIE_SECURE = config.envbool("CSRF_COOKIE_SECURE", False)
    SECURE_SSL_REDIRECT = config.envbool("SECURE_SSL_REDIRECT", False)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/monitoring/health", r"^metrics$"]  # probes and scrapes over HTTP
    SECURE_HSTS_SECONDS = config.envint("SECURE_HSTS_SECONDS", 0, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = config.envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = config.envbool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = config.proxy_ssl_header(config.envstr("SECURE_PROXY_SSL_HEADER", ""))
    # Statement timeout of the queries a request drives (query API, rule preview, log search); 0: none.
    QUERY_TIMEOUT_MS = config.envint("QUERY_TIMEOUT_MS", 30000, minimum=0)
    # A log search with words, a regex or attributes returns what it found once it has searched this long
    # (a partial page whose next_cursor resumes exactly where it stopped); 0: no budget.
    LOG_SEARCH_BUDGET_MS = config.envint("LOG_SEARCH_BUDGET_MS", 150, minimum=0)
    # ... and when it continues from a partial page's cursor (the user asked for more).
    LOG_SEARCH_MORE_BUDGET_MS = config.envint("LOG_SEARCH_MORE_BUDGET_MS", 1000, minimum=0)
    # Login throttling (django-axes): failures per user name and address, then a cool-off.
    AXES_FAILURE_LIMIT = config.envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
    AXES_COOLOFF_TIME = timedelta(minutes=config.envint("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
    AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
    AXES_RESET_ON_SUCCESS = True
    # .env.example's placeholders must never run a stack.
    config.refuse_placeholders(
        {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL}
    )

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
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from the package (offline installs)
    "axes",
    "collector_server.monitoring",
    "collector_server.alerts",
    "collector_server.logs",
    "collector_server.enrollments",
    "collector_server.ui",
    "collector_server.orgs",
    "collector_server.inference",
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
    "axes.middleware.AxesMiddleware",  # login throttling (last, as django-axes asks)
]
if DATABASE_REPLICA_URL:  # safe requests read from the replica (collector_server/replica.py)
    MIDDLEWARE.insert(0, "collector_server.replica.ReplicaReadsMiddleware")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
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
                "collector_server.ui.roles.context",
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
LOGIN_URL = "/login/"  # the UI's own login: viewers are not staff, the admin's would refuse them

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
    "DEFAULT_SCHEMA_CLASS": "collector_server.monitoring.api.schema.FleetwatchAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "collector_server.monitoring.api.pagination.CheckedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "collector_server.monitoring.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fleetwatch API",
    "DESCRIPTION": "Metrics, logs, hosts and alerts of a fleet of hosts.",
    "VERSION": "1.0.0",
    # Tags (and a generated client's module names) from the path after /api/ (v1, ...); /ui/api/ is "ui".
    "SCHEMA_PATH_PREFIX": r"/api/",
    # One name per choice set (otherwise W001, which check-deploy refuses).
    "ENUM_NAME_OVERRIDES": {
        "SeverityEnum": "collector_server.alerts.models.SEVERITY_CHOICES",
        "AlertmanagerStatusEnum": "collector_server.alerts.api.alertmanager_views.WEBHOOK_STATUSES",
    },
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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
