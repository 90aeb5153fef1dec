"""`celerystack-manage roundtrip`: prove the event path end to end on a deployed platform.

Publishes a batch of Logstash-style raw events to the event exchange (as Logstash does: JSON
bodies, no Celery envelope), waits until every one is a row in the database, optionally waits for
a fresh beat heartbeat, prints one JSON line with the figures, and removes the batch's rows.
Exits non-zero when the batch or the heartbeat does not arrive in time.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from celerystack_app.celery import app
from celerystack_app.mail.models import Heartbeat, MailData

PREFIX = "roundtrip-"


def batch_events(batch: str, count: int) -> list[dict]:
    """`count` events of one batch, shaped like the platform's Logstash output."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        {
            "id": f"{PREFIX}{batch}-{number}",
            "@timestamp": now,
            "from": "roundtrip@celerystack.invalid",
            "to": f"check-{number}@celerystack.invalid",
            "subject": f"celerystack round trip {batch} #{number}",
        }
        for number in range(count)
    ]


def publish(events: list[dict], exchange: str, routing_key: str) -> None:
    with app.connection_for_write() as connection:
        producer = connection.Producer()
        for event in events:
            producer.publish(
                json.dumps(event).encode(),
                exchange=exchange,
                routing_key=routing_key,
                content_type="application/json",
                content_encoding="binary",
                serializer=None,
                delivery_mode=2,
                retry=True,
            )


def wait_for(check, timeout: float, interval: float = 0.5):
    """Poll `check()` until it returns a true value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Command(BaseCommand):
    help = "Publish a batch of raw events and wait until each is a row (and, optionally, a beat)."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100, help="events in the batch")
        parser.add_argument("--timeout", type=float, default=180, help="seconds to wait")
        parser.add_argument("--exchange", default="logstash")
        parser.add_argument("--routing-key", default="logstash")
        parser.add_argument(
            "--heartbeat-within",
            type=float,
            default=0,
            help="also wait for a beat heartbeat row at most this many seconds old (0: skip)",
        )
        parser.add_argument("--keep", action="store_true", help="keep the batch's rows")

    def handle(self, *args, **options):
        count = options["events"]
        if count < 1:
            raise CommandError("--events must be 1 or more")
        batch = uuid.uuid4().hex[:12]
        rows = MailData.objects.filter(event_id__startswith=f"{PREFIX}{batch}-")
        started = time.monotonic()
        publish(batch_events(batch, count), options["exchange"], options["routing_key"])
        published = time.monotonic() - started
        stored = wait_for(lambda: rows.count() == count and count, options["timeout"])
        stored = rows.count()
        elapsed = time.monotonic() - started
        heartbeat_age = None
        if options["heartbeat_within"]:
            window = timedelta(seconds=options["heartbeat_within"])

            def fresh():
                recent = Heartbeat.objects.filter(at__gte=timezone.now() - window)
                return recent.order_by("-at").first()

            last = wait_for(fresh, options["timeout"], interval=2)
            heartbeat_age = round((timezone.now() - last.at).total_seconds(), 1) if last else None
        result = {
            "batch": batch,
            "published": count,
            "stored": stored,
            "publish_seconds": round(published, 2),
            "round_trip_seconds": round(elapsed, 2),
            "events_per_second": round(stored / elapsed, 1) if elapsed else None,
            "heartbeat_age_seconds": heartbeat_age,
        }
        if not options["keep"]:
            rows.delete()
        self.stdout.write(json.dumps(result))
        if stored != count:
            raise CommandError(f"only {stored} of {count} events became rows in time")
        if options["heartbeat_within"] and heartbeat_age is None:
            within = options["heartbeat_within"]
            raise CommandError(f"no beat heartbeat within {within:g} s: is celery-beat running?")
