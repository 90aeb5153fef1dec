"""The Celery application: configured from Django settings (namespace CELERY_)."""

from __future__ import annotations

import os

from celery import Celery
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
    from celerystack_app.mail.events import EventConsumerStep

    app.steps["consumer"].add(EventConsumerStep)


_add_event_consumer()
