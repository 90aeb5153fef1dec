"""Production settings: everything from the environment and the secrets source (config.py)."""

from __future__ import annotations

from celerystack_app import topology
from celerystack_app.broker import FAILOVER_STRATEGY, broker_url, result_backend
from celerystack_app.config import Config

cfg = Config()

SECRET_KEY = cfg.secret("DJANGO_SECRET_KEY")
# Keys still accepted for signatures made before a rotation (sessions, password-reset links):
# the deployment writes DJANGO_SECRET_KEY_FALLBACK_<n> while a rotation window is open.
SECRET_KEY_FALLBACKS = cfg.numbered_secrets("DJANGO_SECRET_KEY_FALLBACK")
DEBUG = False
ALLOWED_HOSTS = cfg.list("ALLOWED_HOSTS", "localhost")
TIME_ZONE = cfg.get("TIME_ZONE", "UTC")
USE_TZ = True
ROOT_URLCONF = "celerystack_app.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_celery_beat",
    "celerystack_app.mail",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

# The admin (schedules) is only ever served behind TLS.
SECURE_SSL_REDIRECT = cfg.flag("SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = cfg.integer("HSTS_SECONDS", "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = cfg.flag("HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

_db_ca = cfg.get("DB_TLS_CA", "")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": cfg.get("DB_HOST"),
        "PORT": cfg.integer("DB_PORT", "3306"),
        "NAME": cfg.get("DB_NAME"),
        "USER": cfg.get("DB_USER"),
        "PASSWORD": cfg.secret("DB_PASSWORD"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            **({"ssl": {"ca": _db_ca, "check_hostname": True}} if _db_ca else {}),
        },
    }
}

# Email: a file sink when CELERYSTACK_EMAIL_FILE_PATH is set (test hosts), SMTP otherwise.
EMAIL_FILE_PATH = cfg.get("EMAIL_FILE_PATH", "")
if EMAIL_FILE_PATH:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
else:
    EMAIL_HOST = cfg.get("EMAIL_HOST", "localhost")
    EMAIL_PORT = cfg.integer("EMAIL_PORT", "25")
DEFAULT_FROM_EMAIL = cfg.get("EMAIL_FROM", "celerystack@localhost")

# --- Celery ------------------------------------------------------------------------------------
TOPOLOGY = topology.load(cfg.get("TOPOLOGY_FILE"))


CELERY_BROKER_URL, CELERY_BROKER_USE_SSL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_url(
    cfg, visibility_timeout=TOPOLOGY.get("visibility_timeout")
)
topology.check_broker(TOPOLOGY, CELERY_BROKER_URL)
CELERY_BROKER_FAILOVER_STRATEGY = FAILOVER_STRATEGY
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
if cfg.get("RESULT_BACKEND", ""):
    # Results for callers that wait on them (.get()) and for task state: in Redis, expiring.
    CELERY_RESULT_BACKEND, CELERY_REDIS_BACKEND_USE_SSL = result_backend(cfg)
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
        "global_keyprefix": cfg.get("RESULT_KEY_PREFIX", "results:")
    }
    CELERY_TASK_IGNORE_RESULT = False
    CELERY_RESULT_EXPIRES = cfg.integer("RESULT_EXPIRES", "86400")
else:
    CELERY_TASK_IGNORE_RESULT = True
    CELERY_RESULT_EXPIRES = None  # no result backend: beat needs no backend_cleanup task
CELERY_TASK_QUEUES = topology.celery_queues(TOPOLOGY)
CELERY_TASK_ROUTES = topology.celery_routes(TOPOLOGY)
CELERY_TASK_DEFAULT_QUEUE = topology.default_queue(TOPOLOGY)
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_SOFT_TIME_LIMIT = cfg.integer("TASK_SOFT_TIME_LIMIT", "300")
CELERY_TASK_TIME_LIMIT = cfg.integer("TASK_TIME_LIMIT", "360")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless this is
# set; it then closes it every this many tasks. A new connection per task was most of what a
# store_mail_data task cost (a login, and PyMySQL's TLS context: bench/throughput, about 100 ms of
# CPU each). Connections are kept for CONN_MAX_AGE instead, and checked the way Django checks
# them around a request (celery.py: close_old_connections before and after each task, with
# CONN_HEALTH_CHECKS), so one that a database restart broke is replaced, never used.
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Application -------------------------------------------------------------------------------
MAIL_DATA_RATE_LIMIT = cfg.get("MAIL_DATA_RATE_LIMIT", "5/s")
_lock_ca = cfg.get("LOCK_TLS_CA", "")
LOCK_REDIS = {
    "host": cfg.get("LOCK_HOST"),
    "port": cfg.integer("LOCK_PORT", "6379"),
    "username": cfg.get("LOCK_USER", "locks"),
    "password": cfg.secret("LOCK_PASSWORD"),
    "ssl": bool(_lock_ca),
    **({"ssl_ca_certs": _lock_ca, "ssl_cert_reqs": "required"} if _lock_ca else {}),
}
LOCK_PREFIX = cfg.get("LOCK_PREFIX", "lock:")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": cfg.get("LOG_LEVEL", "INFO")},
}
