"""shop's settings: its own reading of the platform's settings contract (docs/operations.md,
"Your own Django project: the contract"). Plain environment variables CELERYSTACK_*, secrets
as NAME=value lines of the file systemd passes (or CELERYSTACK_SECRETS_FILE), the queues and
routes from topology.json."""

import json
import os
import ssl
from pathlib import Path
from urllib.parse import quote

import pymysql
from kombu import Exchange, Queue

# PyMySQL as the MySQLdb driver: the wheelhouse holds pure-Python wheels only.
pymysql.install_as_MySQLdb()

env = os.environ


def _secrets() -> dict:
    credentials = env.get("CREDENTIALS_DIRECTORY", "")
    path = Path(credentials, "secrets") if credentials else Path(env["CELERYSTACK_SECRETS_FILE"])
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


SECRETS = _secrets()


def secret(name: str) -> str:
    # A one-off command may be given a secret in its environment (migrate: the migration
    # account's password, CELERYSTACK_DB_PASSWORD); services read the file.
    return env.get(f"CELERYSTACK_{name}") or SECRETS[name]


def tls(name: str) -> str:
    return env.get(f"CELERYSTACK_{name}_TLS_CA", "")


SECRET_KEY = secret("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env["CELERYSTACK_ALLOWED_HOSTS"].split(",")
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_celery_beat", "shop"]
# It serves no page, but `check --deploy --fail-level WARNING` (the platform's smoke test)
# judges the settings a web process would have.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": env["CELERYSTACK_DB_HOST"],
        "PORT": int(env["CELERYSTACK_DB_PORT"]),
        "NAME": env["CELERYSTACK_DB_NAME"],
        "USER": env["CELERYSTACK_DB_USER"],
        "PASSWORD": secret("DB_PASSWORD"),
        "OPTIONS": {"charset": "utf8mb4", "ssl": {"ca": tls("DB")}} if tls("DB") else {},
    }
}

SHOP_API_TOKEN = secret("SHOP_API_TOKEN")

TOPOLOGY = json.loads(Path(env["CELERYSTACK_TOPOLOGY_FILE"]).read_text())
_scheme = env["CELERYSTACK_BROKER_SCHEME"]
_login = (
    f"{quote(env['CELERYSTACK_BROKER_USER'], safe='')}:{quote(secret('BROKER_PASSWORD'), safe='')}"
)
_host = f"{env['CELERYSTACK_BROKER_HOST'].split(',')[0]}:{env['CELERYSTACK_BROKER_PORT']}"
if _scheme.startswith("redis"):
    CELERY_BROKER_URL = f"{_scheme}://{_login}@{_host}/0"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": env["CELERYSTACK_BROKER_KEY_PREFIX"],
        "visibility_timeout": TOPOLOGY["visibility_timeout"],
    }
    CELERY_BROKER_USE_SSL = (
        {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": tls("BROKER")}
        if _scheme == "rediss"
        else None
    )
else:
    CELERY_BROKER_URL = (
        f"{_scheme}://{_login}@{_host}/{quote(env['CELERYSTACK_BROKER_VHOST'], safe='')}"
    )
    CELERY_BROKER_USE_SSL = {"ca_certs": tls("BROKER")} if _scheme == "amqps" else False
CELERY_TASK_QUEUES = [
    Queue(
        q["name"],
        Exchange(q["exchange"], type=q["exchange_type"]),
        routing_key=q["routing_key"],
        queue_arguments=q["arguments"],
        durable=q["durable"],
    )
    for q in TOPOLOGY["queues"]
]
CELERY_TASK_ROUTES = {r["pattern"]: {"queue": r["queue"]} for r in TOPOLOGY["routes"]}
CELERY_TASK_DEFAULT_QUEUE = TOPOLOGY["default_queue"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
