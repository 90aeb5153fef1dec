"""`celerystack-manage roundtrip`: prove the event path end to end on a deployed platform.

Publishes a batch of Logstash-style raw events to the event exchange (as Logstash does: JSON
bodies, no Celery envelope; on a redis broker pushed onto the raw queue's list), waits until
every one is a row in the database, optionally waits for a fresh beat heartbeat, prints one
JSON line with the figures, and removes the batch's rows. Exits non-zero when the batch or the
heartbeat does not arrive in time. A database that goes away while it waits (a MariaDB
restart) is reported on standard error and waited for: the events wait in the broker
meanwhile, so the count resumes when it is back; still away at the timeout, the command ends
with an error line saying so.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone
from redis.exceptions import RedisError

from celerystack_app import topology
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


def publish(events: list[dict], exchange: str, routing_key: str, rate: float = 0) -> None:
    """Publish each event once the broker has confirmed the one before (publisher confirms),
    at most `rate` a second when given. A lost connection is retried on the next broker node
    (the failover list), so a publish is at least once: the event ids make copies harmless."""
    interval = 1 / rate if rate else 0
    with app.connection_for_write() as connection:
        producer = connection.Producer()
        for event in events:
            if interval:
                time.sleep(interval)
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


def push(events: list[dict], key: str, rate: float = 0, patience: float = 60) -> None:
    """Push each event onto a redis broker's event list as Logstash's redis output does (RPUSH),
    at most `rate` a second when given. A push the broker refuses (it is restarting) is tried
    again for up to `patience` seconds."""
    from celerystack_app.mail.event_lists import list_client

    interval = 1 / rate if rate else 0
    client = list_client()
    for event in events:
        if interval:
            time.sleep(interval)
        body = json.dumps(event)
        deadline = time.monotonic() + patience
        while True:
            try:
                client.rpush(key, body)
                break
            except (OSError, RedisError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)


def wait_for(check, timeout: float, interval: float = 0.5):
    """Poll `check()` until it returns a true value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Database:
    """Queries that survive the database going away: a failed one is reported once per outage,
    the connection dropped (Django reconnects on the next query), and None returned."""

    def __init__(self, report):
        self.report = report
        self.lost = None  # the error of the outage in progress, if any

    def __call__(self, query):
        try:
            value = query()
        except DatabaseError as error:
            connection.close()
            if self.lost is None:
                self.report(f"lost the database connection ({error}); waiting for it")
            self.lost = error
            return None
        if self.lost is not None:
            self.report("the database connection is back")
            self.lost = None
        return value


class Command(BaseCommand):
    help = "Publish a batch of raw events and wait until each is a row (and, optionally, a beat)."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100, help="events in the batch")
        parser.add_argument("--timeout", type=float, default=180, help="seconds to wait")
        parser.add_argument("--exchange", default="logstash")
        parser.add_argument("--routing-key", default="logstash")
        parser.add_argument(
            "--raw-queue",
            default="logstash",
            help="on a redis broker: the raw queue whose list the events are pushed onto",
        )
        parser.add_argument(
            "--heartbeat-within",
            type=float,
            default=0,
            help="also wait for a beat heartbeat row at most this many seconds old (0: skip)",
        )
        parser.add_argument("--keep", action="store_true", help="keep the batch's rows")
        parser.add_argument(
            "--rate",
            type=float,
            default=0,
            help="publish at most this many events a second, a steady stream (0: at once)",
        )

    def handle(self, *args, **options):
        count = options["events"]
        if count < 1:
            raise CommandError("--events must be 1 or more")
        batch = uuid.uuid4().hex[:12]
        rows = MailData.objects.filter(event_id__startswith=f"{PREFIX}{batch}-")
        database = Database(self.stderr.write)
        started = time.monotonic()
        if options["rate"] < 0:
            raise CommandError("--rate must be 0 (at once) or more")
        events = batch_events(batch, count)
        if topology.broker(settings.TOPOLOGY) == "redis":
            spec = topology.raw_queue(settings.TOPOLOGY, options["raw_queue"])
            push(events, spec["list"], options["rate"])
        else:
            publish(events, options["exchange"], options["routing_key"], options["rate"])
        published = time.monotonic() - started
        wait_for(lambda: database(rows.count) == count, options["timeout"])
        stored = database(rows.count)
        elapsed = time.monotonic() - started
        heartbeat_age = None
        if options["heartbeat_within"] and stored is not None:
            window = timedelta(seconds=options["heartbeat_within"])

            def fresh():
                recent = Heartbeat.objects.filter(at__gte=timezone.now() - window)
                return recent.order_by("-at").first()

            last = wait_for(lambda: database(fresh), options["timeout"], interval=2)
            heartbeat_age = round((timezone.now() - last.at).total_seconds(), 1) if last else None
        if stored is None:
            raise CommandError(
                f"lost the database connection and it was not back within "
                f"{options['timeout']:g} s ({database.lost}); the batch's events wait in the "
                f"broker and become rows once it is: count rows with event_id starting "
                f"{PREFIX}{batch}-"
            )
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
            database(rows.delete)
        self.stdout.write(json.dumps(result))
        if stored != count:
            raise CommandError(f"only {stored} of {count} events became rows in time")
        if options["heartbeat_within"] and heartbeat_age is None:
            within = options["heartbeat_within"]
            raise CommandError(f"no beat heartbeat within {within:g} s: is celery-beat running?")
