import json

import pytest
from celery.utils.quorum_queues import detect_quorum_queues
from celerystack_app import topology
from celerystack_app.celery import app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from plugin_topology import projection, sandbox_topology


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("celerystack_app.mail.tasks.store_mail_data", "mail_data"),
        ("celerystack_app.mail.tasks.send_notification", "email"),
        ("celerystack_app.mail.tasks.heartbeat", "default"),
    ],
)
def test_tasks_route_to_the_queue_the_topology_names(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_celery_declares_queues_exactly_as_the_broker_has_them():
    queues = {q.name: q for q in topology.celery_queues(settings.TOPOLOGY)}
    assert "logstash" not in queues  # raw events: not a Celery queue
    assert queues["logstash.consumer"].auto_delete  # the raw consumer's own worker queue
    assert queues["email"].queue_arguments == {"x-queue-type": "quorum"}
    assert queues["default"].queue_arguments == {"x-queue-type": "classic"}
    # Celery's convention, derived by the collection: the exchange and key are the queue's name.
    assert (queues["mail_data"].exchange.name, queues["mail_data"].routing_key) == (
        "mail_data",
        "mail_data",
    )
    # A quorum queue (email) turns on Celery's native delayed delivery for the whole application,
    # which only works through exchanges that are not direct: every Celery queue's is topic.
    assert {q.exchange.type for q in queues.values()} == {"topic"}
    assert detect_quorum_queues(app, "amqp") == (True, "email")


def test_the_raw_consumer_reads_its_dead_letter_exchange_and_prefetch():
    spec = topology.raw_queue(settings.TOPOLOGY, "logstash")
    assert (spec["dead_letter_exchange"], spec["prefetch"]) == ("logstash.dlx", 10)
    with pytest.raises(ImproperlyConfigured, match="'mail_data' is not a raw event queue"):
        topology.raw_queue(settings.TOPOLOGY, "mail_data")


def test_the_sandbox_topology_as_deployed_gives_every_queue_and_route(tmp_path):
    """The sandbox's (and the scenarios') topology file, resolved by the collection, then read
    by the application from disk exactly as a deployed worker reads it."""
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(projection(sandbox_topology())))
    deployed = topology.load(path)
    queues = {q.name: q for q in topology.celery_queues(deployed)}
    assert sorted(queues) == ["default", "email", "logstash.consumer", "mail_data"]
    routes = topology.celery_routes(deployed)
    assert routes["celerystack_app.mail.tasks.store_mail_data"] == {"queue": "mail_data"}
    assert topology.default_queue(deployed) == "default"
    assert "worker" not in path.read_text()  # no worker settings reach the application


def test_a_file_that_is_not_the_projection_is_refused(tmp_path):
    path = tmp_path / "topology.json"
    path.write_text('{"queues": [{"name": "default"}]}')
    with pytest.raises(ImproperlyConfigured, match="not the application's projection"):
        topology.load(path)
