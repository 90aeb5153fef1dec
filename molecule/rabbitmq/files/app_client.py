"""A producer built as the application builds its broker connection (celerystack_app.broker:
one URL per node, shuffled failover, publisher confirms), run on the controller with the
application's own interpreter, publishing to one queue through the default exchange.

    app_client.py QUEUE FIRST SECOND   publish FIRST messages, print "on <node address>", wait
                                       for a line on stdin (the test kills that node), publish
                                       SECOND more, print "sent <total> ending on <address>"
    app_client.py QUEUE stream         publish until a line arrives on stdin (the test restarts
                                       the brokers meanwhile), print "sent <total> ending on ..."

Broker settings come from the environment, as the application's: CELERYSTACK_BROKER_HOST (the
nodes, comma-separated), _USER, _PASSWORD, _VHOST.
"""

import sys
import threading
import time

from celery import Celery
from celerystack_app.broker import FAILOVER_STRATEGY, broker_url
from celerystack_app.config import Config


def main(queue, first, second=None):
    url, use_ssl, options = broker_url(Config())
    app = Celery(set_as_current=False)
    app.conf.update(
        broker_url=url,
        broker_use_ssl=use_ssl,
        broker_transport_options=options,
        broker_failover_strategy=FAILOVER_STRATEGY,
    )
    sent = 0
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        # What Celery's apply_async does with retry=True: on a lost connection, reconnect (to the
        # next node) and publish again. Each publish returns once the broker confirmed it.
        publish = conn.ensure(producer, producer.publish, max_retries=60, interval_max=2)

        def send():
            nonlocal sent
            publish({"n": sent}, exchange="", routing_key=queue, delivery_mode=2, declare=[])
            sent += 1

        if first == "stream":
            stop = threading.Event()
            threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
            print("streaming on", conn.hostname, flush=True)
            while not stop.is_set():
                send()
                time.sleep(0.02)
        else:
            for _count in range(int(first)):
                send()
            print("on", conn.hostname, flush=True)
            sys.stdin.readline()
            for _count in range(int(second)):
                send()
        print("sent", sent, "ending on", conn.hostname, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
