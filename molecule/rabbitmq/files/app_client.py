"""A producer built as the application builds its broker connection (celerystack_app.broker:
one URL per node, shuffled failover, publisher confirms), run on the controller with the
application's own interpreter. It publishes FIRST messages to a queue, says which node it is on
and waits for a line on stdin (the test kills that node meanwhile), then publishes SECOND more
through the same Celery connection, which moves to another node, and says where it ended.

    CELERYSTACK_BROKER_HOST=a,b,c CELERYSTACK_BROKER_USER=... CELERYSTACK_BROKER_PASSWORD=...
    CELERYSTACK_BROKER_VHOST=/other python app_client.py QUEUE FIRST SECOND
"""

import sys

from celery import Celery
from celerystack_app.broker import FAILOVER_STRATEGY, broker_url
from celerystack_app.config import Config


def main(queue, first, second):
    url, use_ssl, options = broker_url(Config())
    app = Celery(set_as_current=False)
    app.conf.update(
        broker_url=url,
        broker_use_ssl=use_ssl,
        broker_transport_options=options,
        broker_failover_strategy=FAILOVER_STRATEGY,
    )
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        # What Celery's apply_async does with retry=True: on a lost connection, reconnect (to the
        # next node) and publish again.
        publish = conn.ensure(producer, producer.publish, max_retries=20, interval_max=2)
        for n in range(first):
            publish({"n": n}, exchange="", routing_key=queue, delivery_mode=2, declare=[])
        print("on", conn.hostname, flush=True)
        sys.stdin.readline()
        for n in range(first, first + second):
            publish({"n": n}, exchange="", routing_key=queue, delivery_mode=2, declare=[])
        print("sent", first + second, "ending on", conn.hostname, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
