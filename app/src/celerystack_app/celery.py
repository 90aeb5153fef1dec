"""The Celery application: configured from Django settings (namespace CELERY_)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from click import Option

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celerystack_app.settings")

app = Celery("celerystack_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# `celery worker --raw-queue logstash`: this worker also drains a raw event queue.
app.user_options["worker"].add(
    Option(
        ("--raw-queue",),
        default=None,
        help="Consume this raw event queue of the topology and turn each event into a task.",
    )
)


def _add_event_consumer():
    from celerystack_app.mail.event_lists import EventListStep
    from celerystack_app.mail.events import EventConsumerStep

    app.steps["consumer"].add(EventConsumerStep)
    app.steps["consumer"].add(EventListStep)


_add_event_consumer()


@task_prerun.connect
@task_postrun.connect
def _check_database_connections(**_kwargs):
    """What Django does around each request: drop a connection that is broken (health-checked
    before its next use) or older than CONN_MAX_AGE. Celery keeps connections across tasks here
    (settings.CELERY_DB_REUSE_MAX)."""
    from django.db import close_old_connections

    close_old_connections()
