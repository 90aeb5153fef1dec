"""The throughput bench's measuring end (bench/throughput copies it to a worker host and runs it
as root with the application's own Python, settings and secrets). Prints one JSON line.

  throughput.py ceiling N        N persistent messages published with confirms to a queue of
                                 its own and consumed with acks at the same time, on the
                                 application's broker connection settings: the broker's ceiling
  throughput.py steady N         N Logstash-style events published to the event exchange, then
                                 waited for as rows (the platform's event path)
  throughput.py publish N        only publish N events; prints the batch
  throughput.py wait BATCH N S   wait up to S seconds for the batch's N rows; prints when the
                                 first and the last row appeared (epoch seconds)
  throughput.py depth QUEUE      the ready messages of a queue

It reuses the reference application's own event shape and publisher (the roundtrip command), so
the bench publishes exactly what Logstash and the round trip do.
"""

# The application's modules can only be imported once Django is set up (main()).
# pylint: disable=import-outside-toplevel

import contextlib
import json
import os
import sys
import threading
import time
import uuid


def load_environment(path):
    """The application's non-secret settings, as systemd's EnvironmentFile reads them."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                os.environ.setdefault(key, value)


def ceiling(count):
    from celerystack_app.celery import app
    from celerystack_app.mail.management.commands.roundtrip import (
        batch_events,
    )
    from kombu import Consumer, Exchange, Queue

    name = "bench.ceiling." + uuid.uuid4().hex[:8]
    queue = Queue(name, exchange=Exchange(""), routing_key=name, durable=True, auto_delete=False)
    body = json.dumps(batch_events("ceiling", 1)[0]).encode()
    ready, done = threading.Event(), threading.Event()
    acked = {"count": 0, "last": None}

    def on_message(message):
        message.ack()
        acked["count"] += 1
        if acked["count"] == count:
            acked["last"] = time.monotonic()
            done.set()

    def consume():
        with app.connection_for_read() as connection:
            channel = connection.channel()
            channel.basic_qos(0, 100, False)
            with Consumer(channel, queues=[queue], on_message=on_message):
                ready.set()
                while not done.is_set():
                    with contextlib.suppress(TimeoutError):
                        connection.drain_events(timeout=1)

    with app.connection_for_write() as connection:
        queue(connection.default_channel).declare()
        try:
            consumer = threading.Thread(target=consume, daemon=True)
            consumer.start()
            ready.wait(30)
            producer = connection.Producer(serializer=None)
            started = time.monotonic()
            for _number in range(count):
                producer.publish(
                    body,
                    exchange="",
                    routing_key=name,
                    content_type="application/json",
                    content_encoding="binary",
                    delivery_mode=2,
                )
            published = time.monotonic()
            done.wait(600)
        finally:
            queue(connection.default_channel).delete()
    if acked["last"] is None:
        raise SystemExit(f"only {acked['count']} of {count} messages came back")
    return {
        "messages": count,
        "publish_per_second": round(count / (published - started), 1),
        "end_to_end_per_second": round(count / (acked["last"] - started), 1),
    }


def publish(count):
    from celerystack_app.mail.management.commands.roundtrip import (
        batch_events,
    )
    from celerystack_app.mail.management.commands.roundtrip import (
        publish as publish_events,
    )

    batch = uuid.uuid4().hex[:12]
    started = time.time()
    publish_events(batch_events(batch, count), "logstash", "logstash")
    return {
        "batch": batch,
        "published": count,
        "publish_started": started,
        "publish_seconds": round(time.time() - started, 2),
    }


def wait(batch, count, timeout):
    from celerystack_app.mail.management.commands.roundtrip import PREFIX
    from celerystack_app.mail.models import MailData

    rows = MailData.objects.filter(event_id__startswith=f"{PREFIX}{batch}-")
    first = last = None
    stored = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = rows.count()
        if stored and first is None:
            first = time.time()
        if stored >= count:
            last = time.time()
            break
        time.sleep(0.2)
    # event_id is unique: a redelivered event cannot make a second row, so stored == count is
    # exactly once.
    rows.delete()
    return {
        "batch": batch,
        "expected": count,
        "stored": stored,
        "first_row": first,
        "last_row": last,
    }


def steady(count):
    sent = publish(count)
    result = wait(sent["batch"], count, 1800)
    result.update(sent)
    if result["last_row"]:
        result["events_per_second"] = round(
            count / (result["last_row"] - sent["publish_started"]), 1
        )
    return result


def depth(name):
    from celerystack_app.celery import app

    with app.connection_for_read() as connection:
        declared = connection.default_channel.queue_declare(queue=name, passive=True)
    return {"queue": name, "ready": declared.message_count, "consumers": declared.consumer_count}


def main(argv):
    load_environment(os.environ.get("CELERYSTACK_APP_ENV", "/etc/celerystack/app.env"))
    import django

    django.setup()
    mode, args = argv[1], argv[2:]
    if mode == "ceiling":
        result = ceiling(int(args[0]))
    elif mode == "steady":
        result = steady(int(args[0]))
    elif mode == "publish":
        result = publish(int(args[0]))
    elif mode == "wait":
        result = wait(args[0], int(args[1]), float(args[2]))
    elif mode == "depth":
        result = depth(args[0])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
