"""The application's tasks. Routes come from the topology (queue entry `routes`)."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from celerystack_app.mail.locks import LockHeld, only_one
from celerystack_app.mail.models import Completion, Heartbeat, MailData

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    rate_limit=settings.MAIL_DATA_RATE_LIMIT,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)
def store_mail_data(event_id, sender="", recipient="", subject="", logged_at=None, payload=None):
    """Store one mail event; a redelivered or republished event never makes a second row.

    One INSERT in autocommit: one round trip and one commit per event (get_or_create in a
    transaction took six round trips; bench/throughput). The unique event_id refuses a second row,
    whether the event comes again later or from another worker at the same moment.
    """
    # Called inside a transaction (a caller's own, or a test's), a savepoint keeps that
    # transaction usable after a duplicate; a worker runs the task in autocommit and needs none.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard:
            MailData.objects.create(
                event_id=event_id,
                sender=sender,
                recipient=recipient,
                subject=subject,
                logged_at=logged_at,
                payload=payload or {},
            )
    except IntegrityError:
        return False
    return True


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_notification(recipient, subject, body):
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])


@shared_task(ignore_result=False)
def mail_data_stats():
    """How many mail events are stored: what a monitor asks for and waits on (.get(), with a
    result backend)."""
    return {"stored": MailData.objects.count()}


@shared_task(ignore_result=True)
def heartbeat(name="beat"):
    Heartbeat.objects.create(name=name)


@shared_task
def purge_old_mail_data(days=30):
    """Delete stored events older than `days`; one run at a time across the platform."""

    @only_one("purge_old_mail_data", timeout=600)
    def purge():
        cutoff = timezone.now() - timedelta(days=days)
        return MailData.objects.filter(stored_at__lt=cutoff).delete()[0]

    try:
        return purge()
    except LockHeld:
        log.info("purge_old_mail_data is already running elsewhere; skipped")
        return None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def long_running(key, seconds=30):
    """An idempotent long task: counts attempts, records completion once."""
    with transaction.atomic():
        completion = Completion.objects.select_for_update().get_or_create(key=key)[0]
        if completion.completed_at:
            return "already-done"
        completion.attempts += 1
        completion.save(update_fields=["attempts"])
    time.sleep(seconds)
    Completion.objects.filter(key=key, completed_at__isnull=True).update(
        completed_at=timezone.now()
    )
    return "done"
