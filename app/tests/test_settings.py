"""Settings for the unit tests: SQLite in memory, Celery eager, an inline topology.

The topology is written as an inventory writes it and resolved by the collection's own code
(plugin_topology), exactly as the deployment resolves it into topology.json.
"""

from celerystack_app import topology
from plugin_topology import projection

SECRET_KEY = "unit-tests-only"  # noqa: S105
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_celery_beat",
    "celerystack_app.mail",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "celerystack@localhost"

SOURCE_TOPOLOGY = {
    "vhost": "/celery",
    "exchanges": [{"name": "logstash"}, {"name": "logstash.dlx", "type": "fanout"}],
    "queues": [
        {"name": "default"},
        {
            "name": "logstash",
            "raw": True,
            "arguments": {"x-dead-letter-exchange": "logstash.dlx"},
            "worker": {"concurrency": 1},
        },
        {"name": "mail_data", "routes": ["celerystack_app.mail.tasks.store_mail_data"]},
        {"name": "email", "type": "quorum", "routes": ["celerystack_app.mail.tasks.send_*"]},
    ],
    "bindings": [
        {"source": "logstash", "destination": "logstash", "routing_key": "logstash"},
    ],
}
TOPOLOGY = projection(SOURCE_TOPOLOGY)
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_QUEUES = topology.celery_queues(TOPOLOGY)
CELERY_TASK_ROUTES = topology.celery_routes(TOPOLOGY)
CELERY_TASK_DEFAULT_QUEUE = topology.default_queue(TOPOLOGY)
CELERY_TASK_CREATE_MISSING_QUEUES = False

MAIL_DATA_RATE_LIMIT = "5/s"
LOCK_REDIS = {}
LOCK_PREFIX = "lock:"
